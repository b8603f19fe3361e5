"""Streaming == batch oracle, and classic indicators == TA-Lib, on every real candle file.

Tolerance: a relative error, where values smaller than their column's median magnitude are
compared at that magnitude. Features such as (close - SMA) / close are differences of nearly
equal numbers: when close == SMA the exact answer is 0 and any rounding in the operands is
an infinite *relative* error, so the error is measured against the operands' scale instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import talib

from core.candle import timeframe_ms
from features import FEATURE_NAMES
from features.names import CLASSIC_NAMES, WARMUP


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, names: tuple[str, ...]) -> None:
    assert actual.shape == expected.shape
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    mismatch = (nan_a != nan_e).any(axis=0)
    assert not mismatch.any(), f"NaN patterns differ for {[n for n, m in zip(names, mismatch) if m]}"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (inputs the files lack)
        scale = np.nan_to_num(np.nanmedian(np.abs(expected), axis=0))
        err = np.abs(actual - expected) / np.maximum(np.abs(expected), scale)
    err[nan_e] = 0.0
    worst = err.max(axis=0, initial=0.0)
    bad = {n: float(w) for n, w in zip(names, worst) if w > rtol}
    assert not bad, f"relative error above {rtol}: {bad}"


def test_streaming_equals_batch(series):
    assert series.streamed.shape == (len(series.candles), len(FEATURE_NAMES))
    assert_close(series.streamed, series.batch, 1e-9, FEATURE_NAMES)


def _filled(series):
    """The file with its gaps filled by flat zero-volume candles (the engine's documented rule),
    built here independently so TA-Lib sees the same series; returns the real rows' positions."""
    rows = series.rows
    slot = ((rows[:, 0].astype(np.int64) - int(rows[0, 0])) // timeframe_ms(series.timeframe)).astype(np.int64)
    gaps = np.diff(slot) - 1
    assert gaps.max(initial=0) <= 60, "the real files have no gap long enough to restart the state"
    close = np.empty(slot[-1] + 1)
    high, low, volume = np.empty_like(close), np.empty_like(close), np.zeros_like(close)
    for k, s in enumerate(slot):
        end = slot[k + 1] if k + 1 < len(slot) else len(close)
        close[s:end] = high[s:end] = low[s:end] = rows[k, 4]
        high[s], low[s], volume[s] = rows[k, 2], rows[k, 3], rows[k, 5]
    return slot, high, low, close, volume


def _talib_reference(high, low, close, volume) -> dict[str, np.ndarray]:
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    slow_k, slow_d = talib.STOCH(high, low, close, 14, 3, 0, 3, 0)
    with np.errstate(all="ignore"):
        pct_b = np.where(upper > lower, (close - lower) / (upper - lower), np.where(np.isnan(upper), np.nan, 0.5))
        width = (upper - lower) / middle
    return {
        "macd": macd, "macd_signal": signal, "macd_hist": hist, "bb_percent_b": pct_b, "bb_width": width,
        "atr_14": talib.ATR(high, low, close, 14), "stoch_k": slow_k, "stoch_d": slow_d,
        "adx_14": talib.ADX(high, low, close, 14), "obv": talib.OBV(close, volume),
        "mfi_14": talib.MFI(high, low, close, volume, 14), "cci_20": talib.CCI(high, low, close, 20),
        "willr_14": talib.WILLR(high, low, close, 14), "roc_10": talib.ROC(close, 10),
        # Layer-1 features that TA-Lib also defines
        "rsi_14": talib.RSI(close, 14) / 100.0,
        **{f"ema_{n}_norm": (close - talib.EMA(close, n)) / close for n in (5, 15, 30)},
        **{f"sma_{n}_norm": (close - talib.SMA(close, n)) / close for n in (5, 15, 30)},
    }


def test_indicators_match_talib(series):
    slot, high, low, close, volume = _filled(series)
    reference = _talib_reference(high, low, close, volume)
    assert set(CLASSIC_NAMES) <= set(reference)
    names = tuple(reference)
    expected = np.column_stack([reference[n][slot] for n in names])
    for source in (series.streamed, series.batch):
        actual = source[:, [FEATURE_NAMES.index(n) for n in names]]
        assert_close(actual, expected, 1e-6, names)


def test_warmup_matches_talib_lookback(series):
    """Each feature's NaN prefix is exactly its documented warm-up (counted in time slots: filled
    gaps are candles too)."""
    slot = _filled(series)[0]
    for j, name in enumerate(FEATURE_NAMES):
        column = series.streamed[:, j]
        if name in ("quote_asset_volume", "taker_buy_base_asset_volume", "taker_buy_quote_asset_volume",
                    "number_of_trades", "spread_bps", "taker_buy_ratio"):
            assert np.isnan(column).all(), f"{name}: the files carry no such input, so it must be NaN"
            continue
        first = int(np.flatnonzero(~np.isnan(column))[0])
        assert first == int(np.searchsorted(slot, WARMUP[name] - 1)), name
        assert np.isfinite(column[first:]).all(), name
