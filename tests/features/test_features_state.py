"""FeatureState behaviour: warm-up, ready, serialisation, ordering, gaps, missing inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.candle import Candle
from core.errors import DecodeError, InvalidInput, OutOfOrder
from features import FEATURE_NAMES, FeatureState, compute_batch
from features.names import READY_AFTER, WARMUP
from features.state import MAX_FILLED_GAP, WINDOW

MINUTE = 60_000
OPTIONAL = ("quote_asset_volume", "taker_buy_base_asset_volume", "taker_buy_quote_asset_volume",
            "number_of_trades", "spread_bps", "taker_buy_ratio")


def full_candle(i: int, close: float, volume: float = 10.0, t: int | None = None) -> Candle:
    """A candle carrying every optional field."""
    return Candle("ETH-BTC", "1m", MINUTE * i if t is None else t, close, close * 1.01, close * 0.99, close,
                  volume, quote_volume=volume * close, trades=7, taker_buy_base_volume=volume / 4,
                  taker_buy_quote_volume=volume * close / 4, spread_bps=1.5)


def walk(n: int, seed: int = 0) -> list[Candle]:
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return [full_candle(i, float(c), float(v)) for i, (c, v) in enumerate(zip(closes, rng.uniform(1, 50, n)))]


def feed(state: FeatureState, candles) -> np.ndarray:
    return np.array([state.update(c) for c in candles])


def test_warmup_nan_then_values_and_ready():
    state = FeatureState()
    out = []
    for k, candle in enumerate(walk(READY_AFTER + 5), start=1):
        out.append(state.update(candle))
        assert state.count == k
        assert state.ready == (k >= READY_AFTER)
    out = np.array(out)
    for j, name in enumerate(FEATURE_NAMES):
        warm = WARMUP[name]
        assert np.isnan(out[: warm - 1, j]).all(), name
        assert np.isfinite(out[warm - 1:, j]).all(), name
    assert state.last_open_time == MINUTE * (READY_AFTER + 4)


def test_empty_state():
    state = FeatureState()
    assert (state.count, state.last_open_time, state.ready) == (0, None, False)
    assert state.window(60).shape == (0, len(FEATURE_NAMES))
    assert FeatureState.from_bytes(state.to_bytes()).count == 0


@pytest.mark.parametrize("split", [1, 17, 33, 34, 61, 1000])
def test_round_trip_mid_series_continues_identically(split, real_candles):
    candles = real_candles
    live = FeatureState()
    feed(live, candles[:split])
    blob = live.to_bytes()
    restored = FeatureState.from_bytes(blob)
    assert restored.to_bytes() == blob
    assert (restored.count, restored.last_open_time, restored.ready) == (live.count, live.last_open_time, live.ready)
    np.testing.assert_array_equal(restored.window(), live.window())
    rest = candles[split:split + 300]
    np.testing.assert_array_equal(feed(restored, rest), feed(live, rest))  # bit-identical, NaN included
    np.testing.assert_array_equal(restored.window(), live.window())


def test_serialisation_is_compact_and_versioned():
    state = FeatureState()
    feed(state, walk(200))
    blob = state.to_bytes()
    assert len(blob) < 16_000  # ~4 KB of state + the 60-vector float32 window
    with pytest.raises(DecodeError):
        FeatureState.from_bytes(blob[:-1])
    with pytest.raises(DecodeError):
        FeatureState.from_bytes(b"XXXX" + blob[4:])
    with pytest.raises(DecodeError):
        FeatureState.from_bytes(blob[:4] + bytes([99]) + blob[5:])
    with pytest.raises(DecodeError):
        FeatureState.from_bytes(b"")


def test_duplicate_and_older_candles_raise_and_leave_state_untouched():
    state = FeatureState()
    candles = walk(50)
    feed(state, candles)
    before = state.to_bytes()
    with pytest.raises(OutOfOrder):
        state.update(candles[-1])  # duplicate
    with pytest.raises(OutOfOrder):
        state.update(candles[10])  # late
    assert state.to_bytes() == before
    state.update(full_candle(50, 101.0))
    assert state.count == 51


def test_other_timeframe_is_refused():
    state = FeatureState()
    state.update(full_candle(0, 1.0))
    with pytest.raises(InvalidInput):
        state.update(Candle("ETH-BTC", "5m", 300_000, 1.0, 1.0, 1.0, 1.0, 1.0))


def test_missing_optional_inputs_give_nan_not_zero():
    state = FeatureState()
    vec = state.update(Candle("ETH-BTC", "1m", 0, 1.0, 1.1, 0.9, 1.0, 5.0))
    for name in OPTIONAL:
        assert math.isnan(vec[FEATURE_NAMES.index(name)]), name
    vec = state.update(full_candle(1, 1.0))
    values = {name: vec[FEATURE_NAMES.index(name)] for name in OPTIONAL}
    assert values == {"quote_asset_volume": 10.0, "taker_buy_base_asset_volume": 2.5,
                      "taker_buy_quote_asset_volume": 2.5, "number_of_trades": 7.0, "spread_bps": 1.5,
                      "taker_buy_ratio": 0.25}


def test_zero_volume_flat_candles_stay_finite():
    state = FeatureState()
    feed(state, walk(40))
    flat = [full_candle(40 + i, 100.0, volume=0.0) for i in range(80)]
    out = feed(state, flat)
    assert np.isfinite(out).all()
    named = dict(zip(FEATURE_NAMES, out[-1]))
    assert named["volatility_30"] == 0.0 and named["price_position"] == 0.5 and named["taker_buy_ratio"] == 0.5
    assert named["volume_sma_ratio"] == 1.0 and named["vwap_deviation"] == 0.0 and named["bb_percent_b"] == 0.5


def test_flat_window_after_moves_is_exactly_flat():
    """A window of one repeated price (0.1: no multiple of it sums exactly) after a volatile
    history: means are exactly the price, so no residue of departed values reaches a feature."""
    state = FeatureState()
    feed(state, walk(80))
    flat = [Candle("ETH-BTC", "1m", MINUTE * (80 + i), 0.1, 0.1, 0.1, 0.1, 0.3) for i in range(40)]
    named = dict(zip(FEATURE_NAMES, feed(state, flat)[-1]))
    for name in ("sma_5_norm", "sma_15_norm", "sma_30_norm", "volatility_5", "volatility_30", "cci_20",
                 "bb_width"):
        assert named[name] == 0.0, name
    assert named["bb_percent_b"] == 0.5 and named["volume_sma_ratio"] == 1.0


def test_gap_is_filled_with_flat_zero_volume_candles():
    candles = walk(60)
    gapped = candles[:40] + candles[45:]  # five missing minutes
    last = candles[39]
    fills = [Candle("ETH-BTC", "1m", MINUTE * i, last.close, last.close, last.close, last.close, 0.0,
                    quote_volume=0.0, trades=0, taker_buy_base_volume=0.0, taker_buy_quote_volume=0.0)
             for i in range(40, 45)]
    explicit = candles[:40] + fills + candles[45:]
    a, b = FeatureState(), FeatureState()
    out_gapped = feed(a, gapped)
    out_explicit = feed(b, explicit)
    keep = [i for i in range(len(explicit)) if not 40 <= i < 45]
    spread = FEATURE_NAMES.index("spread_bps")
    same = [j for j in range(len(FEATURE_NAMES)) if j != spread]
    np.testing.assert_array_equal(out_gapped[:, same], out_explicit[keep][:, same])
    assert a.count == b.count == 60
    np.testing.assert_allclose(compute_batch(gapped), out_gapped, rtol=1e-9, atol=1e-12)  # the oracle agrees


def test_long_gap_restarts_warmup():
    state = FeatureState()
    feed(state, walk(50))
    vec = state.update(full_candle(50 + MAX_FILLED_GAP + 1, 100.0))
    assert state.count == 1 and not state.ready and state.window().shape[0] == 1
    assert math.isnan(vec[FEATURE_NAMES.index("log_return_1")])
    # the batch oracle applies the same rule
    candles = walk(50) + [full_candle(50 + MAX_FILLED_GAP + 1, 100.0)]
    np.testing.assert_allclose(compute_batch(candles)[-1], vec, rtol=1e-9, atol=1e-12)


def test_window_keeps_the_last_60_vectors():
    state = FeatureState()
    out = feed(state, walk(100))
    window = state.window(60)
    assert window.shape == (WINDOW, len(FEATURE_NAMES)) and window.dtype == np.float32
    np.testing.assert_array_equal(window, out[-60:].astype(np.float32))
    np.testing.assert_array_equal(state.window(5), out[-5:].astype(np.float32))


def test_a_cold_state_holds_a_small_window_and_grows_it_exactly():
    """A series of one candle keeps a few rows, not 60 (100,000 cold symbols fit a worker); across every
    growth step, and after a round trip through bytes at each count, the window is still the last vectors."""
    state, out = FeatureState(), []
    for i, candle in enumerate(walk(70), start=1):
        out.append(state.update(candle))
        assert state._win.shape[0] == min(max(4, 1 << (i - 1).bit_length()), WINDOW)
        np.testing.assert_array_equal(state.window(), np.array(out[-WINDOW:], dtype=np.float32))
        restored = FeatureState.from_bytes(state.to_bytes())
        np.testing.assert_array_equal(restored.window(), state.window())
        assert restored.to_bytes() == state.to_bytes()
    first = FeatureState()
    first.update(walk(1)[0])
    assert first._win.nbytes <= 4 * len(FEATURE_NAMES) * 4


def test_compute_batch_refuses_unordered_series():
    candles = walk(10)
    with pytest.raises(OutOfOrder):
        compute_batch(candles[:5] + candles[4:])
    assert compute_batch([]).shape == (0, len(FEATURE_NAMES))


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 4), st.floats(-0.03, 0.03), st.sampled_from([0.0, 1.0, 7.5]),
                             st.booleans()), min_size=1, max_size=120),
    split=st.integers(0, 120),
)
# nearly flat candles (one 1e-14 move) and gaps: Bollinger bands a few ulps wide
@example(steps=[(1, 0.0, 0.0, False), (1, 1.333940379467362e-14, 0.0, False), (3, 0.0, 0.0, False),
                (3, 0.0, 0.0, False), (4, 0.0, 0.0, False), (4, 0.0, 0.0, False), (1, 0.0, 0.0, False),
                (3, 0.0, 0.0, False)], split=0)
def test_random_messy_series_streaming_equals_batch(steps, split):
    """Gaps, flat candles, zero volume: streaming == batch, and a round trip anywhere changes nothing."""
    t, close, candles = 0, 1.0, []
    for gap, move, volume, flat in steps:
        t += gap * MINUTE
        close = close * math.exp(move) if not flat else close
        high, low = (close, close) if flat else (close * 1.002, close * 0.997)
        candles.append(Candle("X-Y", "1m", t, close, high, low, close, volume))
    state = FeatureState()
    split = min(split, len(candles))
    head = feed(state, candles[:split])
    state = FeatureState.from_bytes(state.to_bytes())
    tail = feed(state, candles[split:])
    streamed = np.concatenate([x for x in (head, tail) if len(x)]) if candles else head
    batch = compute_batch(candles)
    assert np.array_equal(np.isnan(streamed), np.isnan(batch))
    scale = np.maximum(np.abs(batch), 1.0)  # these series have unit-scale prices
    tol = 1e-9 * scale + rounding_noise(candles, batch)
    err = np.abs(streamed - batch)
    assert (np.isnan(err) | (err <= tol)).all(), np.nanmax(err / tol)
    assert np.isfinite(streamed[:, FEATURE_NAMES.index("price_position")]).all()


EPS = np.finfo(np.float64).eps


def engine_series(candles: list[Candle]) -> tuple[np.ndarray, np.ndarray]:
    """Typical prices of the series the engine sees (gaps of <= MAX_FILLED_GAP filled flat at the
    last close, docs/features.md), and the position of each real candle in it."""
    tp, where = [], []
    for k, candle in enumerate(candles):
        if k:
            prev = candles[k - 1]
            assert (candle.open_time - prev.open_time) // MINUTE - 1 <= MAX_FILLED_GAP  # no restarts here
            tp += [prev.close] * int((candle.open_time - prev.open_time) // MINUTE - 1)
        where.append(len(tp))
        tp.append((candle.high + candle.low + candle.close) / 3.0)
    return np.array(tp), np.array(where)


def rounding_noise(candles: list[Candle], batch: np.ndarray) -> np.ndarray:
    """Extra absolute tolerance for the two features that place a price within its window's spread.

    ``bb_percent_b = (c - lower) / (upper - lower)`` and ``cci_20 = (tp - mean) / (0.015 * MAD)``
    divide a difference from a window mean by the window's spread. Both implementations compute
    the mean to within about half a unit in the last place (ulp) of the prices (from deviations
    from a value of the window) and the bands are rounded to the prices' precision too, so each
    side can be off by a couple of ``eps * |price|`` before the division, whatever the algorithm:
    the float64 formula cannot resolve more. When the spread is only a few ulps wide (nearly flat
    candles moving by 1e-14), that is a difference of order 1e-2 between two correct
    implementations, and relative agreement to 1e-9 is meaningless. So each of these features
    gets ``4 * eps * |price| * (1 + |sensitivity of the denominator|) / spread`` on top of the
    1e-9 tolerance (twice the sum of those roundings). For any spread above ~1e-6 of the price
    this is below 1e-9 and relaxes nothing.
    """
    noise = np.zeros_like(batch)
    names = FEATURE_NAMES.index
    ulps = 4 * EPS
    # %B: a mean off by d moves both bands, and %B by d / (upper - lower); the bands' own
    # rounding moves c - lower by up to half an ulp and upper - lower by up to one.
    width = batch[:, names("bb_width")]  # (upper - lower) / middle, and middle ~ close
    pct_b = batch[:, names("bb_percent_b")]
    with np.errstate(divide="ignore", invalid="ignore"):
        noise[:, names("bb_percent_b")] = np.where(width > 0.0, ulps * (1.0 + np.abs(pct_b)) / width, 0.0)
    # CCI: a mean off by d moves tp - mean by d and the mean absolute deviation by up to d.
    tp, where = engine_series(candles)
    cci = batch[:, names("cci_20")]
    n = 20
    for row, i in enumerate(where):
        if i + 1 >= n and not np.isnan(cci[row]):
            w = tp[i + 1 - n:i + 1]
            mad = np.abs(w - w.mean()).mean()
            if mad > 0.0:
                noise[row, names("cci_20")] = ulps * np.abs(w).max() * (1.0 + 0.015 * abs(cci[row])) / (0.015 * mad)
    return noise
