"""Datasets: same engine as the stream, labels that look exactly ``horizon`` candles ahead, nothing else that does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.candle import TIMEFRAME_MS
from core.candle_files import read_candle_file
from core.errors import ConfigError
from features import FEATURE_NAMES, FeatureState
from training.dataset import BUNDLED, build_dataset, series_rows, time_split

STEP = TIMEFRAME_MS["5m"]


@pytest.fixture(scope="module")
def eth():
    return read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:800]


@pytest.fixture(scope="module")
def ltc():
    return read_candle_file(BUNDLED / "LTC-BTC_5m.csv.gz").candles[:800]


def _streamed(candles):
    """The feature rows the candle agent would compute, one candle at a time."""
    state = FeatureState()
    return {c.open_time: (state.update(c), state.ready) for c in candles}


def test_shapes_and_the_stream_engine(eth):
    ds = series_rows(eth, horizon=1)
    n = len(ds)
    assert ds.X.shape == (n, len(FEATURE_NAMES)) and ds.y.shape == (n,) and ds.feature_names == tuple(FEATURE_NAMES)
    assert 0 < n < len(eth) and set(np.unique(ds.y)) <= {0, 1}
    assert all(len(getattr(ds.meta, f.name)) == n for f in dataclasses.fields(ds.meta))
    streamed = _streamed(eth)
    for t, row in zip(ds.meta.open_time, ds.X):
        vec, ready = streamed[int(t)]
        assert ready
        np.testing.assert_array_equal(row, vec)  # bit for bit what serving computes


@pytest.mark.parametrize("horizon", [1, 3])
def test_labels_look_exactly_horizon_candles_ahead(eth, horizon):
    ds = series_rows(eth, horizon=horizon, dead_zone=None)
    close = {c.open_time: c.close for c in eth}
    for t, y, r in zip(ds.meta.open_time.tolist(), ds.y, ds.meta.future_return):
        future = close[t + horizon * STEP]
        assert y == int(future > close[t])
        assert r == pytest.approx(np.log(future / close[t]))
    # The last `horizon` candles have no known future and must be missing.
    assert ds.meta.open_time.max() == eth[-1 - horizon].open_time


def test_no_look_ahead(eth):
    """Changing every candle after t changes no feature row <= t, and no label whose future is <= t."""
    k = 500
    t = eth[k].open_time
    rng = np.random.default_rng(1)
    changed = list(eth[: k + 1])
    for c in eth[k + 1:]:
        f = float(rng.uniform(0.5, 2.0))
        changed.append(dataclasses.replace(c, open=c.open * f, high=c.high * f * 1.01, low=c.low * f * 0.99,
                                           close=c.close * f, volume=c.volume * 3 + 1))
    a, b = series_rows(eth, horizon=2, dead_zone=None), series_rows(changed, horizon=2, dead_zone=None)
    rows_a, rows_b = a.meta.open_time <= t, b.meta.open_time <= t
    np.testing.assert_array_equal(a.meta.open_time[rows_a], b.meta.open_time[rows_b])
    np.testing.assert_array_equal(a.X[rows_a], b.X[rows_b])
    labelled_a = a.meta.open_time + 2 * STEP <= t
    labelled_b = b.meta.open_time + 2 * STEP <= t
    np.testing.assert_array_equal(a.y[labelled_a], b.y[labelled_b])
    assert labelled_a.sum() > 400
    assert not np.array_equal(a.X[~rows_a], b.X[~rows_b])  # the change did reach the later rows


def test_a_gap_means_an_unknown_future(eth):
    gap = eth[400].open_time
    ds = series_rows(eth[:400] + eth[401:], horizon=1, dead_zone=None)
    times = set(ds.meta.open_time.tolist())
    assert gap - STEP not in times  # its next candle is missing: no label, no row
    assert gap + STEP in times


def test_dead_zone(eth):
    keep_ties = series_rows(eth, dead_zone=None)
    no_ties = series_rows(eth, dead_zone=0.0)
    wide = series_rows(eth, dead_zone=0.002)
    ties = keep_ties.meta.future_return == 0
    assert ties.any(), "the real candles have flat moves; the test needs some"
    assert (keep_ties.y[ties] == 0).all()
    assert len(no_ties) == len(keep_ties) - ties.sum() and (no_ties.meta.future_return != 0).all()
    assert (np.abs(wide.meta.future_return) > 0.002).all() and len(wide) < len(no_ties)


def test_time_split_per_symbol_with_purge(eth, ltc):
    ds = build_dataset([eth, ltc], horizon=3)
    train, valid = time_split(ds, valid_fraction=0.2)
    for symbol in ("ETH-BTC", "LTC-BTC"):
        n = (ds.meta.symbol == symbol).sum()
        t = train.meta.open_time[train.meta.symbol == symbol]
        v = valid.meta.open_time[valid.meta.symbol == symbol]
        assert len(v) == round(0.2 * n)
        assert t.max() + 3 * STEP < v.min()  # no training label comes from the validation period
        assert len(t) + len(v) >= n - 3
        np.testing.assert_array_equal(v, np.sort(v))


def test_series_must_be_one_symbol_in_order(eth, ltc):
    with pytest.raises(ConfigError, match="one symbol"):
        series_rows(eth[:50] + ltc[50:100])
    with pytest.raises(ConfigError, match="increasing"):
        series_rows(eth[50:100] + eth[:50])
    with pytest.raises(ConfigError, match="given twice"):
        build_dataset([eth[:100], eth[100:200]])
    with pytest.raises(ConfigError, match="horizon"):
        series_rows(eth, horizon=0)
