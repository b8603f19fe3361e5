"""Per-horizon training: one valid model directory per horizon, a bundle.json naming them, reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.direction import DirectionModel
from models.metadata import BundleConfig
from core.candle_files import read_candle_file
from training.dataset import BUNDLED, build_dataset, build_datasets
from training.train import train_horizons, train_horizons_on_series

HORIZONS = (1, 3)
ROUNDS = 8


@pytest.fixture(scope="module")
def series():
    return [read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1200]]


@pytest.fixture(scope="module")
def trained(series, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    return train_horizons_on_series(series, out, HORIZONS, progress=False, num_boost_round=ROUNDS,
                                    strategy="majority", weights={"lgbm": 2.0, "mamba": 1.0})


def test_writes_one_model_directory_per_horizon_and_a_bundle(trained):
    out = trained.out_dir
    assert sorted(p.name for p in out.iterdir()) == ["bundle.json", "h1", "h3", "reference.npy"]
    for h in HORIZONS:
        model = DirectionModel.load(out / f"h{h}")
        assert model.horizon == h and model.version == trained.models[h].version
        assert model.version.startswith(f"lgbm-h{h}-") and model.metadata.params["num_boost_round"] == ROUNDS
    config = BundleConfig.from_json((out / "bundle.json").read_text())
    assert config.horizons == HORIZONS and config.strategy == "majority"
    assert config.weights == {"lgbm": 2.0, "mamba": 1.0}
    assert config.members == {"lgbm": {"h1": trained.models[1].version, "h3": trained.models[3].version}}
    assert json.loads(json.dumps(trained.to_dict()))["models"]["h3"]["version"] == trained.models[3].version


def test_horizons_learn_different_labels(trained):
    assert trained.models[1].version != trained.models[3].version
    assert trained.models[1].metadata.n_train != trained.models[3].metadata.n_train or \
        trained.models[1].metadata.metrics != trained.models[3].metadata.metrics


def test_deterministic_from_files_with_progress(trained, tmp_path, capsys):
    source = tmp_path / "ETH-BTC_5m.csv"
    import gzip

    source.write_text("\n".join(gzip.decompress((BUNDLED / "ETH-BTC_5m.csv.gz").read_bytes()).decode().splitlines()[:1201]) + "\n")
    again = train_horizons([source], tmp_path / "again", HORIZONS, progress=True, num_boost_round=ROUNDS,
                           strategy="majority", weights={"lgbm": 2.0, "mamba": 1.0})
    assert again.versions == trained.versions
    assert (tmp_path / "again" / "bundle.json").read_bytes() == (trained.out_dir / "bundle.json").read_bytes()
    err = capsys.readouterr().err
    assert "horizon" in err and "round" in err and "features" in err


def test_features_once_equals_features_per_horizon(series):
    once = build_datasets(series, HORIZONS)
    for h in HORIZONS:
        each = build_dataset(series, h)
        np.testing.assert_array_equal(once[h].X, each.X)
        np.testing.assert_array_equal(once[h].y, each.y)
        assert once[h].horizon == h


def test_bad_horizons(series, tmp_path):
    from core.errors import ConfigError

    for bad in ((), (0,), (1, 1)):
        with pytest.raises(ConfigError):
            build_datasets(series, bad)
