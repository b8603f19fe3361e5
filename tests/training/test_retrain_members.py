"""A retrain trains every member the active bundle has: the LightGBM set, and the sequence model (with the
active one's architecture) when there is one, in the candidate and in every walk-forward fold: the
comparisons score every member of both models."""

from __future__ import annotations

import json

import pytest

from models.bundle import SEQUENCE_DIR
from models.loading import load_model
from models.mamba.classifier import MambaConfig
from core.candle_files import read_candle_file
from core.errors import ConfigError
from core.timestamps import format_time
from training.dataset import BUNDLED
from training.scorer import load_scorer
from training.mamba import train_mamba_on_series
from training.retrain_trial import retrain_and_compare, sequence_config
from training.retrain_worker import RetrainConfig
from training.train import train_horizons_on_series

TINY = MambaConfig(d_model=8, n_layers=1)  # the pipeline is under test, not the model's skill
FAST = RetrainConfig(num_boost_round=5, walk_forward_folds=2, mamba_epochs=1)


@pytest.fixture(scope="module")
def candles():
    return read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles


@pytest.fixture(scope="module")
def active_with_mamba(candles, tmp_path_factory):
    out = tmp_path_factory.mktemp("active-mamba")
    train_horizons_on_series([candles[:900]], out, horizons=(1, 2), progress=False, num_boost_round=5)
    train_mamba_on_series([candles[:900]], out / SEQUENCE_DIR, progress=False, config=TINY, epochs=1, threads=1)
    return out


def test_the_sequence_member_is_retrained_with_the_active_architecture(candles, active_with_mamba, tmp_path):
    active = load_scorer(active_with_mamba)
    assert sequence_config(active) == TINY
    out = tmp_path / "candidate"
    trial = retrain_and_compare([candles[900:2100]], active, out, FAST)
    meta = json.loads((out / SEQUENCE_DIR / "model.json").read_text())
    assert MambaConfig.from_dict(meta["config"]) == TINY
    first = meta["training_range"]["ETH-BTC"]["train_first"]  # the new data, not the active model's
    assert first >= format_time(candles[900].open_time)
    assert "mamba" in [m.name for m in load_model(out).ensemble.members]  # the candidate serves with it
    assert trial.walk_forward is not None
    assert trial.candidate["model"]["members"].keys() == trial.active["model"]["members"].keys() == {"lgbm", "mamba"}
    folds = out.with_name(out.name + "-folds")
    trained = [f for f in folds.iterdir() if (f / "bundle.json").exists()]
    assert trained and all((f / SEQUENCE_DIR / "model.json").exists() for f in trained), "each fold trains every member"


def test_a_bundle_without_a_sequence_member_is_retrained_without_one(candles, tmp_path):
    active_dir = tmp_path / "active"
    train_horizons_on_series([candles[:900]], active_dir, horizons=(1, 2), progress=False, num_boost_round=5)
    active = load_scorer(active_dir)
    assert sequence_config(active) is None
    retrain_and_compare([candles[900:2100]], active, tmp_path / "candidate", RetrainConfig(num_boost_round=5, walk_forward_folds=0))
    assert not (tmp_path / "candidate" / SEQUENCE_DIR).exists()


def test_mamba_epochs_must_be_positive():
    with pytest.raises(ConfigError, match="MAMBA_EPOCHS"):
        RetrainConfig.from_env({"CANDLEFLOW_RETRAIN_MAMBA_EPOCHS": "0"})
