"""Training on a slice of real candles: files, metadata, reproducible version, ONNX parity."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pytest

import training.train as train_module
from models.metadata import ModelMetadata
from core.candle_files import read_candle_file
from features import FEATURE_NAMES
from training.dataset import BUNDLED, build_dataset, time_split
from training.export import ParityError, check_parity, model_version, to_onnx
from training.train import LGBM_PARAMS, train_model, train_on_series

N_CANDLES = 1500


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory):
    """The first 1,500 real ETH-BTC candles as a CSV file, as the CLI would be given."""
    lines = gzip.decompress((BUNDLED / "ETH-BTC_5m.csv.gz").read_bytes()).decode().splitlines()
    path = tmp_path_factory.mktemp("data") / "ETH-BTC_5m.csv"
    path.write_text("\n".join(lines[: N_CANDLES + 1]) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(slice_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    return train_model([slice_file], out, horizon=1, progress=False), out


def test_writes_model_and_valid_metadata(trained):
    info, out = trained
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx", "model.txt", "reference.npy"]
    raw = json.loads((out / "model.json").read_text())
    meta = ModelMetadata.from_json((out / "model.json").read_text())
    onnx_bytes = (out / "model.onnx").read_bytes()
    assert meta == info.metadata
    assert meta.name == "lgbm-direction" and meta.horizon == 1
    assert meta.version == "lgbm-h1-" + hashlib.sha256(onnx_bytes).hexdigest()[:12]
    assert meta.onnx_sha256 == hashlib.sha256(onnx_bytes).hexdigest()
    assert meta.native_sha256 == hashlib.sha256((out / "model.txt").read_bytes()).hexdigest()
    assert meta.feature_names == tuple(FEATURE_NAMES)
    assert meta.symbols == ("ETH-BTC",) and meta.timeframes == ("5m",)
    r = meta.training_range["ETH-BTC"]
    first, last, valid_from = (datetime.fromisoformat(r[k]) for k in ("first", "last", "valid_from"))
    assert first < valid_from < last
    assert meta.n_train > 0 and meta.n_valid > 0 and meta.n_train + meta.n_valid < N_CANDLES
    assert meta.lightgbm_version and isinstance(meta.onnx_opset, int) and raw["created_at"].endswith("Z")
    m = meta.metrics
    for key in ("accuracy", "auc", "log_loss", "positive_rate",
                "baseline_always_up_accuracy", "baseline_last_return_sign_accuracy"):
        assert np.isfinite(m[key]), key
    assert 0 <= m["accuracy"] <= 1 and 0 <= m["auc"] <= 1 and m["log_loss"] > 0
    assert m["baseline_always_up_accuracy"] == m["positive_rate"]
    assert info.parity_max_abs_diff < 1e-5
    for key in ("num_threads", "seed", "deterministic", "force_row_wise"):
        assert meta.params[key] == LGBM_PARAMS[key]


def test_same_data_same_version(trained, tmp_path, capsys):
    """Retraining the same candles (here given as a series, with progress bars) gives the same bytes."""
    info, out = trained
    eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:N_CANDLES]
    again = train_on_series([eth], tmp_path, horizon=1, progress=True)
    assert again.version == info.version
    assert (tmp_path / "model.onnx").read_bytes() == (out / "model.onnx").read_bytes()
    assert "round" in capsys.readouterr().err  # tqdm shows the boosting rounds (on stderr)


def test_version_names_the_horizon():
    assert model_version(2, b"x").startswith("lgbm-h2-") and model_version(2, b"x") != model_version(2, b"y")


def test_onnx_matches_native_lightgbm(trained, slice_file):
    """The shipped ONNX file against the native booster, on the validation rows."""
    info, out = trained
    _, valid = time_split(build_dataset([read_candle_file(slice_file).candles]))
    assert len(valid) == info.metadata.n_valid
    session = ort.InferenceSession((out / "model.onnx").read_bytes(), providers=["CPUExecutionProvider"])
    (onnx_p,) = session.run(["probabilities"], {"input": valid.X.astype(np.float32)})
    native = info.booster.predict(valid.X.astype(np.float32).astype(np.float64))
    assert np.max(np.abs(onnx_p[:, 1] - native)) < 1e-5


def test_parity_failure_is_loud_and_writes_nothing(trained, slice_file, tmp_path, monkeypatch):
    def broken(onnx_bytes, booster, X, tolerance=1e-5):
        raise ParityError("simulated")

    monkeypatch.setattr(train_module, "_fit", lambda train, progress, *rounds: trained[0].booster)  # skip the refit
    monkeypatch.setattr(train_module, "check_parity", broken)
    with pytest.raises(ParityError):
        train_model([slice_file], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_check_parity_catches_a_different_model(trained, slice_file):
    info, _ = trained
    train, valid = time_split(build_dataset([read_candle_file(slice_file).candles]))
    other = lgb.train({**LGBM_PARAMS, "num_leaves": 4}, lgb.Dataset(train.X, train.y), num_boost_round=5)
    onnx_bytes = to_onnx(other, len(FEATURE_NAMES), "other").SerializeToString()
    assert check_parity(onnx_bytes, other, valid.X) < 1e-5
    with pytest.raises(ParityError, match="differs"):
        check_parity(onnx_bytes, info.booster, valid.X)
