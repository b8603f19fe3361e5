"""A small real bundle (all five horizons, few boosting rounds) and a Mamba model of the default architecture, each
trained once per session on real candles; real windows of a pair neither saw."""

from __future__ import annotations

import numpy as np
import pytest

from core.candle_files import read_candle_file
from models.mamba.classifier import MambaConfig
from tests.conftest import CANDLES, HELD_OUT
from training.dataset import BUNDLED, series_rows
from training.mamba import train_mamba_on_series
from training.mamba_windows import build_windows
from training.train import train_horizons_on_series

N_TRAIN = 1500  # candles per file: enough rows for 5 horizons, small enough to train in seconds
ROUNDS = 20


@pytest.fixture(scope="session")
def bundle_info(tmp_path_factory):
    series = [read_candle_file(p).candles[:N_TRAIN] for p in sorted(BUNDLED.glob("*.csv.gz"))]
    return train_horizons_on_series(series, tmp_path_factory.mktemp("bundle"), progress=False, num_boost_round=ROUNDS)


@pytest.fixture(scope="session")
def bundle_dir(bundle_info):
    return bundle_info.out_dir


@pytest.fixture(scope="session")
def real_rows():
    """Real feature rows the bundle did not train on (the end of the LTC-BTC file), warm-up included."""
    return series_rows(read_candle_file(BUNDLED / "LTC-BTC_5m.csv.gz").candles[-500:], dead_zone=None).X


@pytest.fixture(scope="session")
def mamba_dir(tmp_path_factory):
    """The default architecture (2 layers, d_model 32), trained briefly on real candles."""
    out = tmp_path_factory.mktemp("mamba-step")
    candles = read_candle_file(CANDLES / "ETH-BTC_5m.csv.gz").candles[:1500]
    train_mamba_on_series([candles], out, progress=False, config=MambaConfig(), epochs=1, threads=1)
    return out


@pytest.fixture(scope="session")
def held_out_windows():
    """256 real full windows (60 warm feature vectors each) of the held-out pair."""
    candles = read_candle_file(HELD_OUT / "ETC-BTC_5m.csv.gz").candles[:600]
    w = build_windows([candles])
    full = w.x[~np.isnan(w.x[:, 0, :]).all(axis=1)]  # no padded rows: the series had 60 candles before
    assert len(full) >= 256
    return full[-256:]
