"""A small real bundle (all five horizons, few boosting rounds) trained once per session on real candles."""

from __future__ import annotations

import pytest

from core.candle_files import read_candle_file
from training.dataset import BUNDLED, series_rows
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
