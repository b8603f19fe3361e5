"""LightGBM -> ONNX, byte for byte reproducible, with a parity check against the native model.

The version of a model is derived from its ONNX bytes, so the export must not embed anything that
changes between runs (onnxmltools names the graph with a random UUID: we replace it).

>>> model_version(1, b"onnx bytes")
'lgbm-h1-c1650a9961b2'
"""

from __future__ import annotations

import hashlib

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
from onnxmltools.convert.common.data_types import FloatTensorType

from models.onnx_session import create_session
from core.errors import ConfigError

__all__ = [
    "INPUT_NAME", "OUTPUT_NAME", "PARITY_TOLERANCE", "ParityError", "check_parity", "float32_thresholds",
    "model_version", "onnx_opset", "to_onnx",
]

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
PARITY_TOLERANCE = 1e-5
# ai.onnx opset asked of the converter; it uses the lowest opset that holds the model (recorded in metadata).
TARGET_OPSET = 15


class ParityError(ConfigError):
    """The exported model does not compute what the trained one does: never ship it."""


def model_version(horizon: int, onnx_bytes: bytes) -> str:
    """Deterministic version: horizon plus the first 12 hex digits of the ONNX bytes' sha256."""
    return f"lgbm-h{horizon}-{hashlib.sha256(onnx_bytes).hexdigest()[:12]}"


def _float32_floor(value: float) -> float:
    """The largest float32 that is <= ``value`` (as a Python float, exactly)."""
    f = np.float32(value)
    if float(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same trees with every split threshold moved down to the nearest float32.

    LightGBM splits at ``x <= t`` with ``t`` a double halfway between two training values; ONNX stores
    ``t`` as float32, rounded to nearest, which can land *on* the upper value and send it the other way
    (a 2e-3 probability difference seen on the real candles). For float32 inputs, ``x <= t`` and
    ``x <= floor32(t)`` are the same test, so this booster predicts exactly as before on what the served
    model receives, and its thresholds survive the export unchanged.
    """
    # tree_sizes holds each tree's byte length, which the new numbers change; without it LightGBM parses in order.
    lines = [line for line in booster.model_to_string().splitlines() if not line.startswith("tree_sizes=")]
    for i, line in enumerate(lines):
        if line.startswith("decision_type=") and any(int(d) & 1 for d in line.split("=", 1)[1].split()):
            raise ConfigError("categorical splits are not supported by the float32 threshold export")
        if line.startswith("threshold="):
            values = line.split("=", 1)[1].split()
            lines[i] = "threshold=" + " ".join(repr(_float32_floor(float(v))) for v in values)
    return lgb.Booster(model_str="\n".join(lines) + "\n")


def to_onnx(booster: lgb.Booster, n_features: int, graph_name: str) -> onnx.ModelProto:
    """Convert a binary LightGBM booster; outputs ``label`` (int64) and ``probabilities`` (n, 2)."""
    model = onnxmltools.convert_lightgbm(
        booster, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        zipmap=False, target_opset=TARGET_OPSET,
    )
    model.graph.name = graph_name  # instead of a random UUID, so the same model gives the same bytes
    # The converter declares the label output as shape [1]; ORT then warns on every batch. It is [N].
    label_dim = model.graph.output[0].type.tensor_type.shape.dim[0]
    label_dim.Clear()
    label_dim.dim_param = "N"
    onnx.checker.check_model(model)
    return model


def onnx_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset the exported graph uses."""
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def check_parity(onnx_bytes: bytes, booster: lgb.Booster, X: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> float:
    """Max |P_onnx - P_native| over the rows of ``X``; ParityError if it exceeds ``tolerance``.

    Both sides see the same float32 values: that is what the served model receives.
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    session, _ = create_session(onnx_bytes, providers=["CPUExecutionProvider"])
    (onnx_p,) = session.run([OUTPUT_NAME], {INPUT_NAME: X32})
    native_p = booster.predict(X32.astype(np.float64))
    diff = float(np.max(np.abs(onnx_p[:, 1].astype(np.float64) - native_p))) if len(X32) else 0.0
    if not diff <= tolerance:  # "not <=" so that a NaN difference fails too
        raise ParityError(f"ONNX export differs from the LightGBM model by {diff:.3g} (> {tolerance:g}) "
                          f"on {len(X32)} validation rows; not writing the model")
    return diff
