"""DirectionModel: one ONNX call per batch, the provider really in use, and loud refusals at load.

Uses the session's ``trained_model`` (tests/conftest.py: a real model trained on the bundled candles);
tests that damage a model work on a copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import numpy as np
import onnxruntime as ort
import pytest

from models.direction import DirectionModel
from core.candle_files import read_candle_file
from core.errors import ConfigError
from features import FEATURE_NAMES
from training.dataset import BUNDLED, series_rows


@pytest.fixture(scope="module")
def model(trained_model):
    return DirectionModel.load(trained_model)


@pytest.fixture(scope="module")
def rows():
    """Real feature rows of LTC-BTC candles the model did not train on (the end of the file)."""
    return series_rows(read_candle_file(BUNDLED / "LTC-BTC_5m.csv.gz").candles[-400:]).X


@pytest.fixture
def model_copy(trained_model, tmp_path):
    return shutil.copytree(trained_model, tmp_path / "model")


def _edit_metadata(model_dir, **changes):
    path = model_dir / "model.json"
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


def test_identity(model, trained_model):
    meta = json.loads((trained_model / "model.json").read_text())
    assert (model.name, model.version, model.horizon) == ("lgbm-direction", meta["version"], 1)
    assert model.feature_names == tuple(FEATURE_NAMES)
    assert model.provider == "CPUExecutionProvider"  # no GPU here


def test_batch_equals_row_by_row(model, rows):
    batch = model.predict_proba(rows)
    assert batch.shape == (len(rows),) and batch.dtype == np.float64
    one_by_one = np.array([model.predict_proba_one(r) for r in rows])
    np.testing.assert_allclose(batch, one_by_one, rtol=0, atol=1e-6)
    assert ((batch > 0) & (batch < 1)).all()
    assert batch.std() > 0  # it does look at its inputs


def test_matches_the_session_directly(model, trained_model, rows):
    session = ort.InferenceSession(str(trained_model / "model.onnx"), providers=["CPUExecutionProvider"])
    (p,) = session.run(["probabilities"], {"input": rows.astype(np.float32)})
    np.testing.assert_allclose(model.predict_proba(rows), p[:, 1], rtol=0, atol=1e-6)  # float32 sums, other order


def test_warm_up_rows_with_nan_still_get_a_probability(model):
    """The agent scores every valid candle, warm-up included (NaN features); that must not blow up."""
    p = model.predict_proba(np.full((2, len(FEATURE_NAMES)), np.nan))
    assert np.isfinite(p).all() and ((0 <= p) & (p <= 1)).all()


def test_wrong_shape(model):
    with pytest.raises(ValueError, match="shape"):
        model.predict_proba(np.zeros((2, len(FEATURE_NAMES) + 1)))
    with pytest.raises(ValueError, match="shape"):
        model.predict_proba(np.zeros(len(FEATURE_NAMES)))


def test_other_feature_names_are_refused(model_copy):
    _edit_metadata(model_copy, feature_names=list(FEATURE_NAMES[:-1]) + ["something_else"])
    with pytest.raises(ConfigError, match="other features"):
        DirectionModel.load(model_copy)


def test_reordered_features_are_refused(model_copy):
    _edit_metadata(model_copy, feature_names=list(reversed(FEATURE_NAMES)))
    with pytest.raises(ConfigError, match="different order"):
        DirectionModel.load(model_copy)


@pytest.mark.parametrize("name", ["model.json", "model.onnx"])
def test_missing_file(model_copy, name):
    (model_copy / name).unlink()
    with pytest.raises(ConfigError, match="not found"):
        DirectionModel.load(model_copy)


def test_missing_directory(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        DirectionModel.load(tmp_path / "nothing-here")


def test_corrupt_metadata(model_copy):
    (model_copy / "model.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        DirectionModel.load(model_copy)


def test_onnx_from_another_export(model_copy):
    (model_copy / "model.onnx").write_bytes((model_copy / "model.onnx").read_bytes() + b"\x00")
    with pytest.raises(ConfigError, match="does not match"):
        DirectionModel.load(model_copy)


def test_corrupt_onnx(model_copy):
    garbage = b"this is not an onnx model"
    (model_copy / "model.onnx").write_bytes(garbage)
    _edit_metadata(model_copy, onnx_sha256=hashlib.sha256(garbage).hexdigest())
    with pytest.raises(ConfigError, match="cannot load"):
        DirectionModel.load(model_copy)


@pytest.mark.filterwarnings("ignore:Specified provider .* is not in available provider names")
def test_provider_is_read_from_the_session_and_logged_once(trained_model, monkeypatch, caplog):
    """onnxruntime-gpu on a machine without a GPU lists CUDA/TensorRT as available (docs/platform.md):
    the model must report the provider the session actually got."""
    real = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", *real])
    with caplog.at_level(logging.INFO, logger="models.direction"):
        model = DirectionModel.load(trained_model)
    assert model.provider == "CPUExecutionProvider"
    loaded = [r for r in caplog.records if r.name == "models.direction"]
    assert len(loaded) == 1 and "CPUExecutionProvider" in loaded[0].getMessage()


def test_explicit_providers(trained_model):
    assert DirectionModel.load(trained_model, providers=["CPUExecutionProvider"]).provider == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ConfigError, match="none of the ONNX Runtime providers"):
            DirectionModel.load(trained_model, providers=["CUDAExecutionProvider"])


def test_session_options_are_deliberate(trained_model):
    model = DirectionModel.load(trained_model, intra_op_threads=2)
    options = model._session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with pytest.raises(ConfigError, match="intra_op_threads"):
        DirectionModel.load(trained_model, intra_op_threads=0)
