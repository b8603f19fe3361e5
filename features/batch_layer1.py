"""Batch (vectorised) Layer-1 derived features over one gap-free series; the streaming oracle.

>>> import numpy as np
>>> c = np.linspace(1.0, 2.0, 40)
>>> layer1_batch(c * 1.01, c * 0.99, c, np.full(40, 5.0)).shape
(40, 16)
"""

from __future__ import annotations

import numpy as np

from features._vec import ema_loop, lag_ratio, nan_array, rolling_mean_var, rolling_sum

__all__ = ["layer1_batch"]


def _rsi(c: np.ndarray, n: int = 14) -> np.ndarray:
    out = nan_array(len(c))
    if len(c) <= n:
        return out
    d = np.diff(c).tolist()
    gain = loss = 0.0
    for x in d[:n]:
        if x < 0:
            loss -= x
        else:
            gain += x
    gain, loss = gain / n, loss / n
    res = [gain / (gain + loss) if gain + loss > 0.0 else 0.5]
    for x in d[n:]:
        gain, loss = gain * (n - 1), loss * (n - 1)
        if x < 0:
            loss -= x
        else:
            gain += x
        gain, loss = gain / n, loss / n
        res.append(gain / (gain + loss) if gain + loss > 0.0 else 0.5)
    out[n:] = res
    return out


def layer1_batch(h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Columns log_return_1 .. price_position (16) for a series without gaps."""
    m = len(c)
    cols = [np.log(lag_ratio(c, k)) for k in (1, 5, 15)]
    r = np.log(c[1:] / c[:-1])  # one-candle log returns, as the state computes them
    for n in (5, 15, 30):
        vol = nan_array(m)
        vol[1:] = np.sqrt(rolling_mean_var(r, n, ddof=1)[1])
        cols.append(vol)
    for n in (5, 15, 30):
        cols.append((c - rolling_sum(c, n) / n) / c)
    for n in (5, 15, 30):
        cols.append((c - ema_loop(c, n)) / c)
    cols.append(_rsi(c))
    vol_sum = rolling_sum(v, 20)
    traded = vol_sum > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        cols.append(np.where(traded, v / (vol_sum / 20), np.where(np.isnan(vol_sum), np.nan, 1.0)))
        tp = (h + l + c) / 3.0
        vwap = np.where(traded, rolling_sum(tp * v, 20) / vol_sum, rolling_sum(tp, 20) / 20)
        cols.append((c - vwap) / c)
        cols.append(np.where(h > l, (c - l) / (h - l), 0.5))
    return np.column_stack(cols)
