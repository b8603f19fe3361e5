"""The Mamba step as one ONNX Runtime graph on the CPU: the NumPy step's arithmetic, fused and vectorised.

:class:`~models.mamba.numpy_step.NumpyMambaStep` spends most of a step in ``np.exp`` over the
(series, d_inner, d_state) scan decay (~4 ns a value on this project's machines: BENCHMARKS.md,
Inference) and in a pass over memory per NumPy call. ONNX Runtime's CPU kernels run the same exp
vectorised (~0.5 ns a value): on 1,000 real series the step costs ~25 % less (12.2 against 16.5 us a
series, and less than PyTorch's 14.8), and a call of a few series ~30 % less.

No new artifact: the graph is built at load from the NumPy step's arrays (``weights.npz``, already
checked against ``model.json``), with the same state layout, so a series' state moves between the
NumPy, PyTorch and ONNX steps. One difference of rounding: the scan's ``delta`` is one product by
``x_proj[:, :dt_rank] @ dt_proj`` (folded at load) instead of two, ~1e-7 apart; the step is held to
the PyTorch step at 1e-5 through 60 candles (``tests/models/test_mamba_onnx_step.py``). ONNX Runtime is
already in every worker (the trees' reference path), so this costs no import.

Several candles of each series at once (:meth:`~models.mamba.stepper.MambaStepper.scan`: a series' candles
of one batch, a window a state catches up on) run as scan graphs of 16, 8, 4 or 2 candles: the projections,
the causal conv and the read-out over all the candles in one node each, only the recurrence unrolled. Ten
candles of two series (the README's session by hand) cost ~2x less than ten steps, a window of 59
candles of 2,000 series (a model new to them) ~1.5x less; the scan equals the steps to ~1e-7.

>>> import numpy as np
>>> step = OnnxMambaStep.load(mamba_model_dir)   # the tiny doctest model (tests/doctest_models.py)
>>> p, state = step.step(np.zeros((3, 41)), step.initial_state(3))
>>> p.shape, state.shape == (3, step.state_size), step.provider
((3, 5), True, 'onnxruntime-cpu-step')
>>> p, state = step.scan(np.zeros((3, 10, 41)), step.initial_state(3))   # 10 candles each: chunks of 8 and 2
>>> p.shape
(3, 10, 5)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.mamba.numpy_step import RMS_EPS, LayerArrays, NumpyMambaStep
from models.mamba.stepper import CPU_STEP_ROWS, MambaStepper
from models.onnx_session import create_session

__all__ = ["PLAIN_MAX_ROWS", "ONNX_STEP_PROVIDER", "SCAN_LENGTHS", "OnnxMambaStep", "scan_graph", "step_graph"]

ONNX_STEP_PROVIDER = "onnxruntime-cpu-step"
# Up to this many series a call, a plain run and a copy of the new states: binding the arrays costs ~30 us
# more than it saves there (2 series: ~120 against ~140-260 us a call; 512: 6.6 against 5.8 ms).
PLAIN_MAX_ROWS = 64
_OPSET = 17
# The scan's graphs, by how many candles of a series they take at once: T candles go as the longest chunks
# that fit (10 = 8 + 2; a chunk of one is the step). Series a call: as many as keep its (series, chunk,
# d_inner, d_state) temporaries the size of a step's of CPU_STEP_ROWS series.
SCAN_LENGTHS = (16, 8, 4, 2)


class _Graph:
    """A small builder: each op gets a fresh output name; weights become initializers."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self._count = 0
        self._ints: dict[tuple[int, ...], str] = {}

    def ints(self, *values: int) -> str:
        """An int64 vector (axes, sizes, shapes), one initializer per distinct value."""
        if values not in self._ints:
            self._ints[values] = self.const(list(values), np.int64)
        return self._ints[values]

    def unsqueeze(self, x: str, axis: int) -> str:
        return self.op("Unsqueeze", x, self.ints(axis))

    def const(self, value: np.ndarray | float | list[int], dtype=np.float32) -> str:
        name = f"w{len(self.weights)}"
        self.weights.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, outputs: int = 1, **attributes) -> str | list[str]:
        self._count += 1
        names = [f"{kind.lower()}{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(kind, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names

    def linear(self, x: str, weight_t: np.ndarray, bias: np.ndarray | None) -> str:
        out = self.op("MatMul", x, self.const(weight_t))
        return self.op("Add", out, self.const(bias)) if bias is not None else out

    def rms_norm(self, x: str, weight: np.ndarray) -> str:
        mean = self.op("ReduceMean", self.op("Mul", x, x), axes=[-1], keepdims=1)
        root = self.op("Sqrt", self.op("Add", mean, self.const(RMS_EPS)))
        return self.op("Mul", self.op("Div", x, root), self.const(weight))

    def softplus(self, x: str) -> str:
        """max(x, 0) + log(1 + exp(-|x|)): ONNX Runtime's Softplus kernel is scalar (~14 ns a value)."""
        tail = self.op("Log", self.op("Add", self.op("Exp", self.op("Neg", self.op("Abs", x))), self.const(1.0)))
        return self.op("Add", self.op("Relu", x), tail)

    def silu(self, x: str) -> str:
        return self.op("Mul", x, self.op("Sigmoid", x))


def _layer(g: _Graph, layer: LayerArrays, h: str, conv: str, ssm: str) -> tuple[str, str, str]:
    """``LayerArrays.step`` as nodes: (the block's output, the new conv state, the new scan state), states (b, d, k|n)."""
    d = layer.d_inner
    xz = g.linear(g.rms_norm(h, layer.norm), layer.in_proj, layer.in_bias)
    x, z = g.op("Split", xz, g.ints(d, d), axis=1, outputs=2)
    shifted = g.op("Slice", conv, g.ints(1), g.ints(layer.d_conv), g.ints(2))
    conv_new = g.op("Concat", shifted, g.unsqueeze(x, 2), axis=2)
    x = g.op("ReduceSum", g.op("Mul", conv_new, g.const(layer.conv)), g.ints(2), keepdims=0)
    if layer.conv_bias is not None:
        x = g.op("Add", x, g.const(layer.conv_bias))
    x = g.silu(x)
    delta, B, C = _delta_b_c(g, layer, x, axis=1)
    decay = g.op("Exp", g.op("Mul", g.unsqueeze(delta, 2), g.const(layer.A)))
    # the outer products as batched MatMuls (k = 1 and n = 1): ONNX Runtime's broadcasting Mul costs ~3x a same-shape one
    inflow = g.op("MatMul", g.unsqueeze(g.op("Mul", delta, x), 2), g.unsqueeze(B, 1))
    ssm_new = g.op("Add", g.op("Mul", decay, ssm), inflow)
    read = g.op("Squeeze", g.op("MatMul", ssm_new, g.unsqueeze(C, 2)), g.ints(2))
    return _gated_output(g, layer, read, x, z), conv_new, ssm_new


def _delta_b_c(g: _Graph, layer: LayerArrays, x: str, axis: int) -> tuple[str, str, str]:
    """The scan's step sizes (after softplus), B and C from the conv's output ``x``, split along ``axis``."""
    d, n, r = layer.d_inner, layer.d_state, layer.dt_rank
    # delta's two products (x_proj's dt columns, then dt_proj) folded into one (d_inner, d_inner) matrix
    projection = np.concatenate([layer.x_proj[:, :r] @ layer.dt_proj, layer.x_proj[:, r:]], axis=1)
    delta, B, C = g.op("Split", g.op("MatMul", x, g.const(projection)), g.ints(d, n, n), axis=axis, outputs=3)
    return g.softplus(g.op("Add", delta, g.const(layer.dt_bias))), B, C


def _gated_output(g: _Graph, layer: LayerArrays, read: str, x: str, z: str) -> str:
    """The block's output: the scan's read-out plus the skip ``D x``, gated by silu(z), projected back."""
    y = g.op("Mul", g.op("Add", read, g.op("Mul", x, g.const(layer.D))), g.silu(z))
    return g.linear(y, layer.out_proj, layer.out_bias)


def step_graph(step: NumpyMambaStep) -> bytes:
    """The ONNX model of ``step``'s arithmetic: inputs ``rows`` (b, features) and ``state`` (b, state_size),
    float32; outputs ``p`` (b, horizons) and ``new_state`` (b, state_size)."""
    return _graph(step, None)


def _graph(step: NumpyMambaStep, length: int | None) -> bytes:
    """The step's graph (``length`` None: rows (b, features)) or the scan's (rows (b, length, features))."""
    g = _Graph()
    z = g.op("Div", g.op("Sub", "rows", g.const(step.mean)), g.const(step.std))
    z = g.op("Where", g.op("IsNaN", z), g.const(0.0), z)  # nothing known: the training mean
    z = g.op("Clip", z, g.const(-step.clip), g.const(step.clip))
    h = g.linear(z, step.input_proj, step.input_bias)
    shapes = [(layer.d_inner, layer.d_conv, layer.d_state) for layer in step.layers]
    sizes = [size for d, k, n in shapes for size in (d * k, d * n)]
    parts = g.op("Split", "state", g.ints(*sizes), axis=1, outputs=len(sizes))
    flat_new = []
    for i, (layer, (d, k, n)) in enumerate(zip(step.layers, shapes)):
        conv = g.op("Reshape", parts[2 * i], g.ints(-1, d, k))
        ssm = g.op("Reshape", parts[2 * i + 1], g.ints(-1, d, n))
        if length is None:
            out, conv_new, ssm_new = _layer(g, layer, h, conv, ssm)
        else:
            out, conv_new, ssm_new = _scan_layer(g, layer, h, conv, ssm, length)
        h = g.op("Add", h, out)
        flat_new += [g.op("Reshape", conv_new, g.ints(-1, d * k)),
                     g.op("Reshape", ssm_new, g.ints(-1, d * n))]
    logits = g.linear(g.rms_norm(h, step.norm_f), step.head, step.head_bias)
    g.nodes.append(helper.make_node("Sigmoid", [logits], ["p"]))
    g.nodes.append(helper.make_node("Concat", flat_new, ["new_state"], axis=1))
    features, horizons = step.input_proj.shape[0], step.head.shape[1]
    steps = [] if length is None else [length]
    graph = helper.make_graph(
        g.nodes, "mamba_step" if length is None else f"mamba_scan_{length}",
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["b", *steps, features]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, ["b", step.state_size])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["b", *steps, horizons]),
         helper.make_tensor_value_info("new_state", TensorProto.FLOAT, ["b", step.state_size])],
        g.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _scan_layer(g: _Graph, layer: LayerArrays, h: str, conv: str, ssm: str, length: int) -> tuple[str, str, str]:
    """``length`` steps of :func:`_layer` at once, ``h`` (b, length, d_model): everything but the scan's
    recurrence runs once over all the candles; the recurrence ``h_t = decay_t h_(t-1) + inflow_t`` (and
    its read-out) is unrolled, a few small nodes a candle."""
    d, k = layer.d_inner, layer.d_conv
    xz = g.linear(g.rms_norm(h, layer.norm), layer.in_proj, layer.in_bias)
    x, z = g.op("Split", xz, g.ints(d, d), axis=2, outputs=2)
    # the causal conv over the conv state's inputs and the new ones, (b, k - 1 + length, d) oldest first, as k
    # shifted products (ONNX Runtime's grouped Conv costs ~10x these)
    inputs = g.op("Concat", g.op("Transpose", g.op("Slice", conv, g.ints(1), g.ints(k), g.ints(2)), perm=[0, 2, 1]),
                  x, axis=1)
    conv_new = g.op("Transpose", g.op("Slice", inputs, g.ints(length - 1), g.ints(length - 1 + k), g.ints(1)),
                    perm=[0, 2, 1])
    x = None
    for j in range(k):
        term = g.op("Mul", g.op("Slice", inputs, g.ints(j), g.ints(j + length), g.ints(1)), g.const(layer.conv[:, j]))
        x = term if x is None else g.op("Add", x, term)
    if layer.conv_bias is not None:
        x = g.op("Add", x, g.const(layer.conv_bias))
    x = g.silu(x)
    delta, B, C = _delta_b_c(g, layer, x, axis=2)

    def per_candle(values: str, axis: int) -> list[str]:
        return g.op("Split", g.unsqueeze(values, axis), g.ints(*[1] * length), axis=1, outputs=length)

    # Each candle's decay and inflow from its own slices: splitting (b, length, d, n) decays and inflows, and
    # joining the states, would copy four such tensors (~25 % more a call of 64 series x 8 candles).
    A = g.const(layer.A)
    reads, state = [], g.unsqueeze(ssm, 1)  # (b, 1, d, n)
    for delta_t, inflow_t, B_t, C_t in zip(per_candle(delta, 3), per_candle(g.op("Mul", delta, x), 3),
                                           per_candle(B, 2), per_candle(C, 3)):
        decay = g.op("Exp", g.op("Mul", delta_t, A))
        state = g.op("Add", g.op("Mul", decay, state), g.op("MatMul", inflow_t, B_t))
        reads.append(g.op("MatMul", state, C_t))  # (b, 1, d, 1)
    read = g.op("Squeeze", g.op("Concat", *reads, axis=1), g.ints(3))
    return _gated_output(g, layer, read, x, z), conv_new, g.op("Squeeze", state, g.ints(1))


def scan_graph(step: NumpyMambaStep, length: int) -> bytes:
    """The ONNX model of ``length`` steps of ``step`` at once: inputs ``rows`` (b, length, features) and
    ``state`` (b, state_size), float32; outputs ``p`` (b, length, horizons), P(up) after each candle, and
    ``new_state`` (b, state_size), the state after the last. ``length`` >= 2: a candle alone is :func:`step_graph`."""
    if length < 2:
        raise ValueError(f"a scan graph takes at least 2 candles, not {length}: one candle is the step's graph")
    return _graph(step, length)


class OnnxMambaStep(MambaStepper):
    """Step mode of a trained Mamba classifier in ONNX Runtime on the CPU (module docstring); build it with :meth:`load`."""

    provider = ONNX_STEP_PROVIDER

    def __init__(self, step: NumpyMambaStep) -> None:
        self.metadata, self.state_size = step.metadata, step.state_size
        self._horizons = step.head.shape[1]
        self._session, _ = create_session(step_graph(step), providers=["CPUExecutionProvider"], intra_op_threads=1)
        self._scans = {length: create_session(scan_graph(step, length), providers=["CPUExecutionProvider"],
                                              intra_op_threads=1)[0] for length in SCAN_LENGTHS}

    @classmethod
    def load(cls, model_dir: str | Path) -> "OnnxMambaStep":
        """The step of an exported model directory's arrays (:meth:`NumpyMambaStep.load`: ConfigError without them)."""
        return cls(NumpyMambaStep.load(model_dir))

    def _step_rows(self, rows: np.ndarray, state: np.ndarray, new: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if len(rows) <= PLAIN_MAX_ROWS:
            p, new[...] = self._session.run(None, {"rows": rows, "state": state})
            return p
        # Bound to the caller's arrays: ONNX Runtime reads the states and writes the new ones in place of a copy
        # each way (``new`` is a block of whole rows of a C-ordered array, so contiguous).
        binding = self._session.io_binding()
        p = np.empty((len(rows), self._horizons), dtype=np.float32)
        for name, array in (("rows", rows), ("state", state)):
            binding.bind_input(name, "cpu", 0, np.float32, array.shape, array.ctypes.data)
        for name, array in (("p", p), ("new_state", new)):
            binding.bind_output(name, "cpu", 0, np.float32, array.shape, array.ctypes.data)
        self._session.run_with_iobinding(binding)
        return p

    def _scan_into(self, rows: np.ndarray, state: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The scan in chunks of :data:`SCAN_LENGTHS` candles, one call a chunk and block of series."""
        n, length = rows.shape[:2]
        t = 0
        while t < length:
            chunk = next((c for c in SCAN_LENGTHS if c <= length - t), 1)
            if chunk == 1:
                p[:, t], state = self.step(rows[:, t], state)
            else:
                session, block, new = self._scans[chunk], max(1, CPU_STEP_ROWS // chunk), np.empty_like(state)
                for a in range(0, n, block):
                    inputs = {"rows": np.ascontiguousarray(rows[a:a + block, t:t + chunk]), "state": state[a:a + block]}
                    p[a:a + block, t:t + chunk], new[a:a + block] = session.run(None, inputs)
                state = new
            t += chunk
        return state

    def __repr__(self) -> str:
        return f"OnnxMambaStep({self.version}, {self.provider})"
