"""MambaModel serving: ONNX == PyTorch, batches, warm-up padding, NaN rule, and refusing bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.mamba.classifier import MambaConfig
from models.mamba.export import PARITY_TOLERANCE
from models.mamba.model import MambaModel
from models.mamba.windows import pad_windows
from core.candle_files import read_candle_file
from core.errors import ConfigError
from features import FEATURE_NAMES, FeatureState
from training.mamba import BUNDLED, train_mamba_on_series
from training.mamba_windows import build_windows

F = len(FEATURE_NAMES)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small model trained on real candles (few epochs: the tests check the serving, not the skill)."""
    out = tmp_path_factory.mktemp("mamba-model")
    candles = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:400]
    train_mamba_on_series([candles], out, progress=False, config=MambaConfig(d_model=8, n_layers=1), epochs=1, threads=1)
    return out


@pytest.fixture(scope="module")
def onnx_model(model_dir) -> MambaModel:
    return MambaModel.load(model_dir)


@pytest.fixture(scope="module")
def real_windows() -> np.ndarray:
    """Windows of candles the model never saw (later in the file), with the 6 always-NaN fields."""
    candles = read_candle_file(BUNDLED / "LTC-BTC_5m.csv.gz").candles[1000:1200]
    return build_windows([candles]).x


def test_identity(onnx_model, model_dir):
    meta = json.loads((model_dir / "model.json").read_text())
    assert onnx_model.name == "mamba-direction"
    assert onnx_model.horizons == (1, 2, 3, 4, 5) and onnx_model.window == 60
    assert onnx_model.version == meta["version"] == "mamba-" + meta["onnx_sha256"][:12]
    assert onnx_model.provider == "CPUExecutionProvider"


def test_onnx_equals_torch_within_tolerance(model_dir, onnx_model, real_windows):
    torch_model = MambaModel.load(model_dir, backend="torch")
    assert torch_model.version == onnx_model.version
    diff = np.max(np.abs(onnx_model.predict_proba(real_windows) - torch_model.predict_proba(real_windows)))
    assert diff <= PARITY_TOLERANCE


def test_batch_equals_one_by_one(onnx_model, real_windows):
    batch = onnx_model.predict_proba(real_windows[:16])
    single = np.array([onnx_model.predict_proba_one(w) for w in real_windows[:16]])
    assert batch.shape == (16, 5)
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-6)
    assert onnx_model.predict_proba(np.empty((0, 60, F))).shape == (0, 5)


def test_warm_up_windows_are_left_padded_with_nan(onnx_model):
    candles = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:20]
    state = FeatureState()
    for c in candles:
        state.update(c)
    short = state.window(60)                      # only 20 steps so far
    assert short.shape == (20, F)
    padded = np.full((60, F), np.nan, dtype=np.float32)
    padded[40:] = short
    expected = onnx_model.predict_proba(padded[None])
    np.testing.assert_array_equal(onnx_model.predict_proba([short]), expected)
    np.testing.assert_array_equal(onnx_model.predict_proba(short[None]), expected)
    # Mixed lengths in one batch, and a longer window keeps its last 60 steps.
    long = np.vstack([np.ones((10, F), dtype=np.float32), padded])
    mixed = onnx_model.predict_proba([short, padded, long])
    np.testing.assert_allclose(mixed, np.vstack([expected] * 3), rtol=0, atol=1e-6)


def test_nan_means_the_training_mean(onnx_model, model_dir, real_windows):
    mean = np.asarray(json.loads((model_dir / "model.json").read_text())["normalisation"]["mean"], dtype=np.float32)
    w = real_windows[:4].copy()
    w[:, 30:, 23] = np.nan                         # rsi_14 missing for the last 30 steps
    filled = w.copy()
    filled[:, 30:, 23] = mean[23]
    np.testing.assert_allclose(onnx_model.predict_proba(w), onnx_model.predict_proba(filled), rtol=0, atol=1e-6)


def test_all_nan_and_extreme_inputs_give_finite_deterministic_probabilities(onnx_model, model_dir):
    torch_model = MambaModel.load(model_dir, backend="torch")
    x = np.full((3, 60, F), np.nan)
    x[1] = 1e30                                    # clipped at +10 std
    x[2] = np.inf
    for model in (onnx_model, torch_model):
        p = model.predict_proba(x)
        assert bool(np.isfinite(p).all()) and bool(((p > 0) & (p < 1)).all())
        np.testing.assert_array_equal(p, model.predict_proba(x))
        np.testing.assert_array_equal(p[1], p[2])  # +inf and a huge value both clip to +10 std
    np.testing.assert_allclose(onnx_model.predict_proba(x), torch_model.predict_proba(x), atol=PARITY_TOLERANCE)


def test_wrong_feature_count_is_rejected(onnx_model):
    with pytest.raises(ValueError, match="41 features"):
        onnx_model.predict_proba(np.zeros((2, 60, 40)))
    assert pad_windows(np.zeros((2, 60, F))).shape == (2, 60, F)


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "copy"))


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_missing_files_are_config_errors(model_dir, tmp_path, backend):
    with pytest.raises(ConfigError, match="not found"):
        MambaModel.load(tmp_path / "nothing", backend=backend)
    d = _copy(model_dir, tmp_path)
    (d / ("model.onnx" if backend == "onnx" else "weights.pt")).unlink()
    with pytest.raises(ConfigError, match="not found"):
        MambaModel.load(d, backend=backend)


@pytest.mark.parametrize("backend, name", [("onnx", "model.onnx"), ("torch", "weights.pt")])
def test_corrupt_files_are_config_errors(model_dir, tmp_path, backend, name):
    d = _copy(model_dir, tmp_path)
    data = bytearray((d / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / name).write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="does not match model.json"):
        MambaModel.load(d, backend=backend)
    (d / "model.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        MambaModel.load(d, backend=backend)


def test_feature_mismatch_is_a_config_error(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path)
    meta = json.loads((d / "model.json").read_text())
    meta["feature_names"] = list(reversed(meta["feature_names"]))
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="different order"):
        MambaModel.load(d)
    meta["feature_names"] = meta["feature_names"][1:]
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="other features"):
        MambaModel.load(d, backend="torch")


def test_unknown_backend_is_a_config_error(model_dir):
    with pytest.raises(ConfigError, match="unknown Mamba serving backend"):
        MambaModel.load(model_dir, backend="tensorflow")
