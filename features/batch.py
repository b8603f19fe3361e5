"""compute_batch: every feature of a whole candle series at once, vectorised with numpy.

This is the oracle for :class:`~features.state.FeatureState`: the same definitions
and the same messy-feed rules (gaps filled with flat zero-volume candles up to
``MAX_FILLED_GAP``, a restart after a longer gap, NaN for missing optional inputs),
implemented independently over arrays.

>>> from core.candle import Candle
>>> c = [Candle("ETH-BTC", "1m", 60_000 * t, 1.0, 1.0, 1.0, 1.0, 0.0) for t in (0, 1, 3)]
>>> out = compute_batch(c)   # the missing minute 2 is filled but not returned
>>> out.shape, float(out[2, FEATURE_NAMES.index("log_return_1")])
((3, 41), 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.candle import Candle, timeframe_ms
from core.errors import InvalidInput, OutOfOrder
from features.batch_classic import classic_batch
from features.batch_layer1 import layer1_batch
from features.names import FEATURE_NAMES, N_FEATURES
from features.state import MAX_FILLED_GAP

__all__ = ["compute_batch"]

_OPTIONAL = ("quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume", "trades")


def _column(candles: Sequence[Candle], name: str) -> np.ndarray:
    return np.array([np.nan if (x := getattr(c, name)) is None else x for c in candles], dtype=np.float64)


def _segment(rows: dict[str, np.ndarray], grid: np.ndarray) -> np.ndarray:
    """Features of one run of candles whose gaps are all short enough to fill; rows at real candles."""
    size = int(grid[-1]) + 1
    real = np.zeros(size, dtype=bool)
    real[grid] = True
    # For every slot, the index of the last real candle at or before it.
    src = np.maximum.accumulate(np.where(real, np.cumsum(real) - 1, 0))
    close = rows["close"][src]
    full = {}
    for name in ("open", "high", "low"):
        full[name] = np.where(real, rows[name][src], close)  # a filled candle is flat at the last close
    full["close"] = close
    full["volume"] = np.where(real, rows["volume"][src], 0.0)
    for name in _OPTIONAL:
        # zero if the feed carries the field (no trades happened), NaN if it never did
        full[name] = np.where(real, rows[name][src], rows[name][src] * 0.0)
    full["spread_bps"] = np.where(real, rows["spread_bps"][src], np.nan)
    v, tbb = full["volume"], full["taker_buy_base_volume"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isnan(tbb), np.nan, np.where(v > 0.0, tbb / v, 0.5))
    h, l, c = full["high"], full["low"], full["close"]
    raw = np.column_stack([full["open"], h, l, c, v, full["quote_volume"], tbb, full["taker_buy_quote_volume"],
                           full["trades"], full["spread_bps"], ratio])
    out = np.hstack([raw, layer1_batch(h, l, c, v), classic_batch(h, l, c, v)])
    return out[grid]


def compute_batch(candles: Sequence[Candle]) -> np.ndarray:
    """Feature matrix ``(len(candles), len(FEATURE_NAMES))`` of one series, oldest candle first."""
    n = len(candles)
    if n == 0:
        return np.empty((0, N_FEATURES))
    step = timeframe_ms(candles[0].timeframe)
    if any(c.timeframe != candles[0].timeframe for c in candles):
        raise InvalidInput("compute_batch needs candles of one timeframe")
    t = np.array([c.open_time for c in candles], dtype=np.int64)
    bad = np.flatnonzero(np.diff(t) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise OutOfOrder(f"candle open_time {t[i]} is not after the last one ({t[i - 1]})")
    rows = {name: _column(candles, name) for name in
            ("open", "high", "low", "close", "volume", "spread_bps", *_OPTIONAL)}
    slot = (t - t[0]) // step
    starts = np.r_[0, np.flatnonzero(np.diff(slot) - 1 > MAX_FILLED_GAP) + 1, n]
    out = np.empty((n, N_FEATURES))
    for a, b in zip(starts[:-1], starts[1:]):
        seg = {name: col[a:b] for name, col in rows.items()}
        out[a:b] = _segment(seg, slot[a:b] - slot[a])
    assert out.shape[1] == len(FEATURE_NAMES)
    return out
