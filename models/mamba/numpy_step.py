"""The Mamba step on the CPU in NumPy: the serving worker's sequence member without PyTorch in the process.

PyTorch is ~190 MB of a worker's memory on import alone (BENCHMARKS.md, Pipeline), and a CPU worker uses it
for one thing: :meth:`MambaRecurrent.step`, one scan step per series and candle. This module runs the same
step — :class:`~models.mamba.classifier.MambaClassifier`'s normalisation, input projection, per layer
RMSNorm and :meth:`~models.mamba.block.MambaBlock.step`, final norm, head — on the same weights, exported
beside ``weights.pt`` as ``weights.npz`` (plain float32 arrays: loaded with ``allow_pickle=False``, checked
against ``model.json``). The state layout is :class:`~models.mamba.recurrent.MambaRecurrent`'s, so a
series' state moves between the two; ``tests/models/test_mamba_numpy_step.py`` holds them to 1e-5.

>>> import numpy as np
>>> step = NumpyMambaStep.load(mamba_model_dir)   # the tiny doctest model (tests/doctest_models.py)
>>> state = step.initial_state(3)
>>> p, state = step.step(np.zeros((3, 41)), state)
>>> p.shape, state.shape == (3, step.state_size), step.provider
((3, 5), True, 'numpy-cpu-step')
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from models.mamba.metadata import ARRAYS_FILE, METADATA_FILE, MambaMetadata
from models.mamba.stepper import MambaStepper

__all__ = ["NUMPY_PROVIDER", "NumpyMambaStep", "arrays_bytes"]

NUMPY_PROVIDER = "numpy-cpu-step"
RMS_EPS = 1e-5  # models/mamba/classifier.py RMSNorm's
_SOFTPLUS_THRESHOLD = 20.0  # torch.nn.functional.softplus's: above it, softplus(x) is x


def arrays_bytes(state_dict: Mapping[str, Any]) -> bytes:
    """A classifier's ``state_dict`` as the bytes of ``weights.npz`` (float32 arrays, names unchanged)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t, dtype=np.float32)
                        for name, t in state_dict.items()})
    return buffer.getvalue()


def _part(flat: np.ndarray, start: int, d: int, k: int) -> np.ndarray:
    """Columns ``start:start + d * k`` of per-series flat states as a (series, d, k) view: writes land in ``flat``."""
    part = flat[:, start:start + d * k]
    part.shape = (len(flat), d, k)  # raises rather than copy: a copy would drop the writes
    return part


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_EPS) * weight


class LayerArrays:
    """One Mamba block's weights, laid out for the step (the NumPy step runs it; the ONNX step builds its graph from it)."""

    def __init__(self, w: Mapping[str, np.ndarray], prefix: str, norm: np.ndarray, d_state: int) -> None:
        self.norm = norm
        self.in_proj = w[f"{prefix}.in_proj.weight"].T.copy()  # (d_model, 2 d_inner)
        self.in_bias = w.get(f"{prefix}.in_proj.bias")
        self.d_inner = self.in_proj.shape[1] // 2
        conv = w[f"{prefix}.conv1d.weight"]  # (d_inner, 1, d_conv)
        self.conv = conv[:, 0, :].copy()
        self.d_conv = self.conv.shape[1]
        self.conv_bias = w.get(f"{prefix}.conv1d.bias")
        self.x_proj = w[f"{prefix}.x_proj.weight"].T.copy()  # (d_inner, dt_rank + 2 d_state)
        self.dt_rank = self.x_proj.shape[1] - 2 * d_state
        self.d_state = d_state
        self.dt_proj = w[f"{prefix}.dt_proj.weight"].T.copy()  # (dt_rank, d_inner)
        self.dt_bias = w[f"{prefix}.dt_proj.bias"]
        self.A = -np.exp(w[f"{prefix}.A_log"])  # (d_inner, d_state)
        self.D = w[f"{prefix}.D"]
        self.out_proj = w[f"{prefix}.out_proj.weight"].T.copy()  # (d_inner, d_model)
        self.out_bias = w.get(f"{prefix}.out_proj.bias")

    def step(self, h: np.ndarray, conv: np.ndarray, ssm: np.ndarray,
             conv_out: np.ndarray, ssm_out: np.ndarray) -> np.ndarray:
        """``MambaBlock.step`` on the normalised input: writes the new states into ``conv_out``/``ssm_out``
        (views of the output state array) and returns the block's output."""
        xz = self._linear(_rms_norm(h, self.norm), self.in_proj, self.in_bias)
        x, z = xz[:, :self.d_inner], xz[:, self.d_inner:]
        conv_out[..., :-1] = conv[..., 1:]
        conv_out[..., -1] = x
        x = np.einsum("bdk,dk->bd", conv_out, self.conv)  # the causal conv's last output
        if self.conv_bias is not None:
            x += self.conv_bias
        x = _silu(x)
        dbc = x @ self.x_proj
        dt, B, C = dbc[:, :self.dt_rank], dbc[:, self.dt_rank:self.dt_rank + self.d_state], dbc[:, self.dt_rank + self.d_state:]
        delta = dt @ self.dt_proj + self.dt_bias
        delta = np.where(delta > _SOFTPLUS_THRESHOLD, delta, np.log1p(np.exp(np.minimum(delta, _SOFTPLUS_THRESHOLD))))
        # h = exp(delta A) h + (delta x) B on contiguous (rows, d_inner, d_state) scratch (einsum's outer
        # products: ~2x numpy's broadcasting here), then one copy into the strided state view
        h_new = np.einsum("bd,dn->bdn", delta, self.A)
        np.exp(h_new, out=h_new)
        h_new *= ssm
        h_new += np.einsum("bd,bn->bdn", delta * x, B)
        ssm_out[...] = h_new
        y = (np.einsum("bdn,bn->bd", h_new, C) + x * self.D) * _silu(z)
        return self._linear(y, self.out_proj, self.out_bias)

    @staticmethod
    def _linear(x: np.ndarray, weight_t: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        out = x @ weight_t
        if bias is not None:
            out += bias
        return out


class NumpyMambaStep(MambaStepper):
    """Step mode of a trained Mamba classifier in NumPy on the CPU (module docstring); build it with :meth:`load`."""

    provider = NUMPY_PROVIDER

    def __init__(self, arrays: Mapping[str, np.ndarray], metadata: MambaMetadata) -> None:
        config = metadata.config
        self.metadata = metadata
        self.clip = float(config.get("clip", 10.0))
        w = {name: np.asarray(a, dtype=np.float32) for name, a in arrays.items()}
        try:
            self.mean, self.std = w["mean"], w["std"]
            self.input_proj, self.input_bias = w["input_proj.weight"].T.copy(), w["input_proj.bias"]
            self.layers = [LayerArrays(w, f"layers.{i}", w[f"norms.{i}.weight"], int(config.get("d_state", 16)))
                           for i in range(int(config.get("n_layers", 2)))]
            self.norm_f = w["norm_f.weight"]
            self.head, self.head_bias = w["head.weight"].T.copy(), w["head.bias"]
        except KeyError as exc:
            raise ConfigError(f"Mamba arrays lack {exc.args[0]!r}: not this architecture's weights") from None
        self._shapes = [(layer.d_inner, layer.d_conv, layer.d_state) for layer in self.layers]
        self.state_size = sum(d * (k + n) for d, k, n in self._shapes)

    @classmethod
    def load(cls, model_dir: str | Path) -> "NumpyMambaStep":
        """The arrays of an exported model directory (``weights.npz``, checked against ``model.json``);
        ConfigError when there are none (a model exported before them: the PyTorch step serves it)."""
        model_dir = Path(model_dir)
        try:
            metadata = MambaMetadata.from_json((model_dir / METADATA_FILE).read_text(encoding="utf-8", errors="replace"))
            data = (model_dir / ARRAYS_FILE).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{model_dir}: no Mamba arrays to step in NumPy ({exc.strerror})") from None
        if not metadata.arrays_sha256 or hashlib.sha256(data).hexdigest() != metadata.arrays_sha256:
            raise ConfigError(f"{model_dir / ARRAYS_FILE}: content does not match {METADATA_FILE}")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # plain arrays: nothing is unpickled
                arrays = {name: npz[name] for name in npz.files}
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{model_dir / ARRAYS_FILE}: not readable ({exc})") from None
        return cls(arrays, metadata)

    def _step_rows(self, rows: np.ndarray, state: np.ndarray, new: np.ndarray) -> np.ndarray:
        # exp(-x) of a very negative x overflows to inf, and x / inf is the 0 SiLU and the sigmoid should give
        with np.errstate(over="ignore"):
            z = (rows - self.mean) / self.std
            z[np.isnan(z)] = 0.0
            np.clip(z, -self.clip, self.clip, out=z)
            h = z @ self.input_proj + self.input_bias
            at = 0
            for layer, (d, k, n) in zip(self.layers, self._shapes):
                conv, conv_out = _part(state, at, d, k), _part(new, at, d, k)
                at += d * k
                ssm, ssm_out = _part(state, at, d, n), _part(new, at, d, n)
                at += d * n
                h = h + layer.step(h, conv, ssm, conv_out, ssm_out)
            logits = _rms_norm(h, self.norm_f) @ self.head + self.head_bias
            return 1.0 / (1.0 + np.exp(-logits))

    def __repr__(self) -> str:
        return f"NumpyMambaStep({self.version}, {self.provider})"
