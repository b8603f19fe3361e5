"""``batch_features``: the features of a candle DataFrame, computed by the streaming engine itself.

Training and offline analysis call this instead of a separate implementation, so their features
are the serving features by construction: every row goes through :meth:`FeatureState.update`,
gaps, restarts and NaN rules included.

Columns are those of the candle files (``ts, open, high, low, close, volume``; optionally
``quote_volume, trades, taker_buy_base_volume, taker_buy_quote_volume, spread_bps``). A missing
optional column, or a NaN in one, is a field the feed lacks (the Candle's ``None``), never zero.

The timeframe matters only for gaps (how many candles are missing between two rows). When it is
not given it is inferred as the smallest spacing between consecutive ``ts``, which must be a known
timeframe; a frame of fewer than two rows has no spacing and is treated as ``1m`` (a single candle
has no gap to measure, so the choice cannot change its features).

>>> import pandas as pd
>>> df = pd.DataFrame({"ts": [0, 300_000, 900_000], "open": [1.0, 1.1, 1.2], "high": [1.2, 1.3, 1.4],
...                    "low": [0.9, 1.0, 1.1], "close": [1.1, 1.2, 1.3], "volume": [5.0, 0.0, 7.0]})
>>> out = batch_features(df)              # 5m inferred; the missing 600_000 candle is filled
>>> out.shape, list(out.index), round(float(out.loc[2, "log_return_1"]), 6)
((3, 41), [0, 1, 2], 0.080043)
>>> batch_features(df.iloc[[0, 2, 1]])
Traceback (most recent call last):
...
core.errors.OutOfOrder: row 1 (position 2): candle open_time 300000 is not after the last one (900000)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.candle import TIMEFRAME_MS, Candle
from core.errors import InvalidInput, OutOfOrder
from features.names import FEATURE_NAMES
from features.state import FeatureState

__all__ = ["batch_features", "infer_timeframe"]

REQUIRED = ("ts", "open", "high", "low", "close", "volume")
# DataFrame column -> Candle field, in Candle's keyword order
OPTIONAL = {"quote_volume": "quote_volume", "trades": "trades", "taker_buy_base_volume": "taker_buy_base_volume",
            "taker_buy_quote_volume": "taker_buy_quote_volume", "spread_bps": "spread_bps"}
_BY_MS = {ms: name for name, ms in TIMEFRAME_MS.items()}


def infer_timeframe(ts: np.ndarray) -> str:
    """The timeframe whose length is the smallest positive spacing of ``ts`` (epoch ms); ``1m`` below two rows."""
    if len(ts) < 2:
        return "1m"
    steps = np.diff(np.asarray(ts, dtype=np.int64))
    steps = steps[steps > 0]
    if not len(steps):
        return "1m"  # nothing but out-of-order rows: update() will name the first one
    step = int(steps.min())
    if step not in _BY_MS:
        raise InvalidInput(f"candle spacing of {step} ms is not a known timeframe "
                           f"({', '.join(TIMEFRAME_MS)}); pass timeframe=")
    return _BY_MS[step]


def _row(candles: pd.DataFrame, i: int) -> str:
    label = candles.index[i]
    label = label.item() if isinstance(label, np.generic) else label  # 3, not np.int64(3)
    return f"row {label!r} (position {i})"


def _optional(values: np.ndarray, as_int: bool) -> list:
    # NaN is how a DataFrame says "the feed lacks this field": the engine's None
    out = values.tolist()
    return [None if math.isnan(x) else (int(x) if as_int else x) for x in out]


def batch_features(candles: pd.DataFrame, symbol: str = "?", timeframe: str | None = None) -> pd.DataFrame:
    """One row of FEATURE_NAMES columns per input row (same index), from :class:`FeatureState` updates.

    Raises :class:`~core.errors.OutOfOrder` naming the row for a row not newer than the one
    before it (a duplicate or a late candle), and :class:`~core.errors.InvalidInput` for a
    missing required column, a NaN in one, or an unknown timeframe.
    """
    missing = [c for c in REQUIRED if c not in candles.columns]
    if missing:
        raise InvalidInput(f"candle frame lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, candles.columns))})")
    required = candles[list(REQUIRED)].to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(required).any(axis=1))
    if len(bad):
        raise InvalidInput(f"{_row(candles, int(bad[0]))}: NaN in a required column")
    ts = candles["ts"].to_numpy()
    if np.issubdtype(ts.dtype, np.datetime64):
        ts = ts.astype("datetime64[ms]").astype(np.int64)
    ts = np.asarray(ts, dtype=np.int64)
    if timeframe is None:
        timeframe = infer_timeframe(ts)
    elif timeframe not in TIMEFRAME_MS:
        raise InvalidInput(f"unknown timeframe {timeframe!r} (known: {', '.join(TIMEFRAME_MS)})")
    n = len(candles)
    columns = [ts.tolist()] + [required[:, j].tolist() for j in range(1, 6)]
    extras = {field: _optional(candles[col].to_numpy(dtype=np.float64), col == "trades")
              for col, field in OPTIONAL.items() if col in candles.columns}
    none = [None] * n
    opt = [extras.get(field, none) for field in OPTIONAL.values()]
    state = FeatureState()
    out = np.empty((n, len(FEATURE_NAMES)))
    for i, (t, o, h, l, c, v, qv, tr, tbb, tbq, sp) in enumerate(zip(*columns, *opt)):
        candle = Candle(symbol, timeframe, t, o, h, l, c, v, qv, tr, tbb, tbq, sp)
        try:
            out[i] = state.update(candle)
        except OutOfOrder as exc:
            raise OutOfOrder(f"{_row(candles, i)}: {exc}") from None
    return pd.DataFrame(out, index=candles.index, columns=list(FEATURE_NAMES))
