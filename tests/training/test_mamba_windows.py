"""The Mamba dataset: windows from the stream's engine, labels by time, an honest (purged, time-ordered) split."""

from __future__ import annotations

import numpy as np
import pytest

from core.candle_files import read_candle_file
from core.errors import ConfigError
from features import FeatureState
from training.dataset import BUNDLED
from training.mamba_windows import build_windows, split_windows


@pytest.fixture(scope="module")
def candles():
    return read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:360]


def test_windows_are_the_feature_states_windows(candles):
    w = build_windows([candles])
    state = FeatureState()
    t = 100  # a row well past warm-up; its window is what the stream's state holds after candle t
    for c in candles[:t + 1]:
        state.update(c)
    row = int(np.flatnonzero(w.open_time == candles[t].open_time)[0])
    np.testing.assert_array_equal(w.x[row], state.window(60))
    close = np.array([c.close for c in candles])
    np.testing.assert_array_equal(w.y[row], [int(close[t + h] > close[t]) for h in range(1, 6)])
    # First kept row: the state has just become ready (34 candles), its window is left-padded with NaN.
    assert w.open_time[0] == candles[33].open_time
    assert bool(np.isnan(w.x[0, :26]).all()) and not bool(np.isnan(w.x[0, 26:, 3]).any())
    assert w.open_time[-1] == candles[-6].open_time  # the last 5 candles have no full future


def test_split_is_time_ordered_and_purged(candles):
    train, valid, test = split_windows(build_windows([candles]))
    step = 300_000
    assert train.open_time.max() + 5 * step < valid.open_time.min()
    assert valid.open_time.max() + 5 * step < test.open_time.min()
    with pytest.raises(ConfigError, match="too few"):
        split_windows(build_windows([candles[:40]]))
