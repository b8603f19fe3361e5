"""ONNX export details that parity depends on."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pytest

from training.export import float32_thresholds, to_onnx


def _onnx_proba(booster, X):
    session = ort.InferenceSession(to_onnx(booster, X.shape[1], "t").SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"input": X.astype(np.float32)})[0][:, 1]


@pytest.mark.parametrize("a", [1.0, 0.3, 1e-3, 12.5])
def test_float32_thresholds_keep_splits_between_adjacent_float32_values(a):
    """Two adjacent float32 values split by LightGBM at their (double) midpoint: ONNX rounds that
    threshold onto the upper value and sends it the wrong way, unless the threshold is floored."""
    a = np.float32(a)
    b = np.nextafter(a, np.float32(np.inf))
    X = np.array([[a]] * 50 + [[b]] * 50, dtype=np.float64)
    y = np.array([0] * 50 + [1] * 50)
    params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5, "min_data_in_bin": 1,
              "num_leaves": 2, "deterministic": True, "num_threads": 1}
    raw = lgb.train(params, lgb.Dataset(X, y), num_boost_round=3)
    native = raw.predict(X)
    assert np.abs(_onnx_proba(raw, X) - native).max() > 0.1  # the problem is real
    fixed = float32_thresholds(raw)
    np.testing.assert_array_equal(fixed.predict(X), native)  # same model for float32 inputs
    assert np.abs(_onnx_proba(fixed, X) - native).max() < 1e-6


def test_export_is_byte_for_byte_reproducible():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 4)).astype(np.float32).astype(np.float64)
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "deterministic": True, "force_row_wise": True,
              "num_threads": 2, "seed": 1, "bagging_fraction": 0.8, "bagging_freq": 1}
    first, second = (float32_thresholds(lgb.train(params, lgb.Dataset(X, y), num_boost_round=10)) for _ in range(2))
    assert to_onnx(first, 4, "g").SerializeToString() == to_onnx(second, 4, "g").SerializeToString()
