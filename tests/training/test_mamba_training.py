"""Mamba training: normalisation from the training split, deterministic, parity-checked export (the windows and
the split: test_mamba_windows.py)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from models.mamba.classifier import MambaClassifier, MambaConfig
from models.mamba.export import ParityError, check_parity, export_onnx
from core.candle_files import read_candle_file
from core.errors import ConfigError
from features import FEATURE_NAMES
from training.mamba import BUNDLED, train_mamba, train_mamba_on_series
from training.mamba_windows import build_windows, normalisation_stats, split_windows

TINY = MambaConfig(d_model=8, n_layers=1)  # the tests check the pipeline, not the model's skill


@pytest.fixture(scope="module")
def candles():
    return read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:360]


@pytest.fixture(scope="module")
def trained(candles, tmp_path_factory):
    out = tmp_path_factory.mktemp("mamba-train")
    return train_mamba_on_series([candles], out, progress=False, config=TINY, epochs=2, threads=1)


def test_normalisation_uses_the_training_split_only(trained, candles):
    train, _, _ = split_windows(build_windows([candles]))
    mean, _ = normalisation_stats(train)
    norm = trained.metadata.normalisation
    np.testing.assert_allclose(norm["mean"], np.nan_to_num(mean), rtol=1e-6)
    always_nan = np.isnan(mean)
    assert always_nan.sum() == 6  # the optional fields OHLCV files lack
    assert all(norm["std"][i] == 1.0 for i in np.flatnonzero(always_nan))


def test_metadata_and_metrics(trained):
    meta = json.loads((trained.out_dir / "model.json").read_text())
    assert meta["name"] == "mamba-direction" and meta["version"] == trained.version
    assert meta["feature_names"] == list(FEATURE_NAMES) and meta["horizons"] == [1, 2, 3, 4, 5]
    assert meta["window"] == 60 and meta["onnx_opset"] >= 17
    assert "NaN -> 0" in meta["normalisation"]["rule"] and "left-padded" in meta["normalisation"]["padding"]
    for h in "12345":
        m = meta["metrics"]["horizons"][h]
        assert {"accuracy", "auc", "log_loss", "baseline_always_up_accuracy"} <= set(m)
    assert trained.parity_max_abs_diff <= 1e-4
    assert sorted(p.name for p in trained.out_dir.iterdir()) == ["model.json", "model.onnx", "weights.npz", "weights.pt"]
    assert meta["arrays_sha256"] == hashlib.sha256((trained.out_dir / "weights.npz").read_bytes()).hexdigest()


def test_training_is_deterministic(trained, candles, tmp_path):
    again = train_mamba_on_series([candles], tmp_path, progress=False, config=TINY, epochs=2, threads=1)
    assert again.version == trained.version
    assert again.metadata.weights_sha256 == trained.metadata.weights_sha256
    assert again.history == trained.history


def test_train_mamba_reads_files_and_rejects_unknown_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown Mamba training option"):
        train_mamba([BUNDLED / "ETH-BTC_5m.csv.gz"], tmp_path, progress=False, learning_rate=1.0)
    assert not list(tmp_path.iterdir())


def test_parity_failure_is_raised_not_written():
    torch.manual_seed(0)
    model = MambaClassifier(MambaConfig(d_model=4, n_layers=1))
    onnx_bytes, _ = export_onnx(model)
    x = np.random.default_rng(0).normal(size=(4, 60, 41))
    assert check_parity(onnx_bytes, model, x) <= 1e-4
    with torch.no_grad():
        model.head.bias += 1.0  # the PyTorch model now differs from the exported graph
    with pytest.raises(ParityError, match="differs"):
        check_parity(onnx_bytes, model, x)
