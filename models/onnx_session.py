"""ONNX Runtime sessions with deliberate options and the best execution provider that really works.

``onnxruntime-gpu`` lists TensorRT and CUDA as *available* even on a machine without a GPU; creating
the session then falls back to CPU with an error in the log (docs/platform.md). So the provider in use is
read from ``session.get_providers()`` after the session exists, never guessed from the available list.

>>> import onnx
>>> from onnx import TensorProto, helper
>>> graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
>>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
>>> session, provider = create_session(model.SerializeToString())
>>> provider in PROVIDER_PREFERENCE
True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, compose, helper, numpy_helper

from models.providers import PROVIDER_PREFERENCE, ProviderLog, check_granted, parse_providers, usable_providers
from core.errors import ConfigError

__all__ = ["PROVIDER_PREFERENCE", "P_UP_OUTPUT", "create_session", "merge_p_up"]

log = logging.getLogger(__name__)

P_UP_OUTPUT = "p_up"
# One per process: the provider decision is logged once, however many models and reloads follow.
_PROVIDER_LOG = ProviderLog()


def _session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # One thread by default: the worker scores small batches, and several workers share the cores;
    # ORT's default (one thread per core) spins threads that fight each other for tiny requests.
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    # Sequential: a tree-ensemble graph is a chain with nothing to run in parallel between nodes.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def create_session(
    model: bytes,
    providers: Sequence[str] | str | None = None,
    intra_op_threads: int = 1,
) -> tuple[ort.InferenceSession, str]:
    """An InferenceSession for the serialized ONNX ``model`` and the provider it actually runs on.

    ``providers`` (default :data:`PROVIDER_PREFERENCE`; see :func:`models.providers.parse_providers`)
    is filtered to those this onnxruntime build has; ConfigError if none remain, if an explicit list
    without CPU ends up on CPU, or if the bytes are not a loadable model.
    """
    if intra_op_threads < 1:
        raise ConfigError(f"intra_op_threads must be at least 1, got {intra_op_threads}")
    wanted = parse_providers(providers)
    usable = usable_providers(wanted, ort.get_available_providers())
    try:
        session = ort.InferenceSession(model, sess_options=_session_options(intra_op_threads), providers=usable)
    except Exception as exc:  # ORT raises its own untyped errors (InvalidProtobuf, Fail, ...)
        raise ConfigError(f"ONNX Runtime cannot load the model: {exc}") from exc
    granted = session.get_providers()[0]
    check_granted(granted, usable, explicit=providers is not None)
    _PROVIDER_LOG.record(usable, granted)
    return session, granted


def merge_p_up(models: Sequence[bytes], input_name: str, output_name: str) -> bytes:
    """Several binary classifiers over the same input as one graph whose output ``p_up`` is (n, k) float32:
    column j is model j's P(class 1). One session run then scores every horizon, instead of k runs
    whose fixed cost (~10 us each) dominates small batches. The trees themselves are copied unchanged.
    """
    nodes, initializers, columns = [], [], []
    opsets: dict[str, int] = {}
    ir_version, graph_input = 0, None
    for j, raw in enumerate(models):
        model = onnx.load_from_string(raw)
        ir_version = max(ir_version, model.ir_version)
        for o in model.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
        graph_input = graph_input or model.graph.input[0]
        prefix = f"m{j}_"
        graph = compose.add_prefix(model, prefix).graph  # unique names inside the merged graph
        for node in graph.node:
            node.input[:] = [input_name if name == prefix + input_name else name for name in node.input]
            nodes.append(node)
        initializers.extend(graph.initializer)
        nodes.append(helper.make_node("Gather", [prefix + output_name, "class_1"], [prefix + P_UP_OUTPUT], axis=1))
        columns.append(prefix + P_UP_OUTPUT)
    if graph_input is None:
        raise ConfigError("no models to merge")
    initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "class_1"))
    nodes.append(helper.make_node("Concat", columns, [P_UP_OUTPUT], axis=1))
    output = helper.make_tensor_value_info(P_UP_OUTPUT, TensorProto.FLOAT, ["N", len(models)])
    graph = helper.make_graph(nodes, "p-up-" + str(len(models)), [graph_input], [output], initializer=initializers)
    merged = helper.make_model(graph, ir_version=ir_version,
                               opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())])
    onnx.checker.check_model(merged)
    return merged.SerializeToString()
