"""Vectorised window helpers for the batch oracle (numpy only, no per-candle Python).

Each returns an array as long as its input with NaN where the window is not full yet.
Recursive smoothers (EMA, Wilder) cannot be vectorised without losing exactness, so they
are plain loops over a list here, written independently of the streaming blocks.

>>> import numpy as np
>>> rolling_sum(np.array([1.0, 2.0, 3.0, 4.0]), 3).tolist()
[nan, nan, 6.0, 9.0]
>>> ema_loop(np.array([1.0, 2.0, 3.0, 4.0]), 3).tolist()
[nan, nan, 2.0, 3.0]
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["ema_loop", "lag_ratio", "nan_array", "rolling_max", "rolling_mean_var", "rolling_min", "rolling_sum",
           "window_mean"]


def nan_array(m: int) -> np.ndarray:
    return np.full(m, np.nan)


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    out = nan_array(len(x))
    if len(x) >= n:
        out[n - 1:] = sliding_window_view(x, n).sum(axis=1)
    return out


def rolling_mean_var(x: np.ndarray, n: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-pass mean and variance per window; exactly 0 variance for a window of one repeated value."""
    mean, var = nan_array(len(x)), nan_array(len(x))
    if len(x) >= n:
        w = sliding_window_view(x, n)
        mu = window_mean(w)
        m2 = ((w - mu[:, None]) ** 2).sum(axis=1)
        mean[n - 1:] = mu
        var[n - 1:] = np.where(w.max(axis=1) == w.min(axis=1), 0.0, np.maximum(m2, 0.0) / (n - ddof))
    return mean, var


def window_mean(w: np.ndarray) -> np.ndarray:
    """Mean of each row, as the newest value plus the mean deviation from it: accurate to the last
    bit of the values even when they differ only in their last bits, and exactly the value for a
    row of one repeated value."""
    ref = w[:, -1]
    return ref + (w - ref[:, None]).sum(axis=1) / w.shape[1]


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    out = nan_array(len(x))
    if len(x) >= n:
        out[n - 1:] = sliding_window_view(x, n).max(axis=1)
    return out


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    out = nan_array(len(x))
    if len(x) >= n:
        out[n - 1:] = sliding_window_view(x, n).min(axis=1)
    return out


def lag_ratio(c: np.ndarray, k: int) -> np.ndarray:
    """c[i] / c[i - k], NaN for the first k."""
    out = nan_array(len(c))
    if len(c) > k:
        out[k:] = c[k:] / c[:-k]
    return out


def ema_loop(x: np.ndarray, n: int, start: int = 0, seed: float | None = None) -> np.ndarray:
    """TA-Lib EMA of x[start:], seeded with the mean of its first n values (or ``seed``) at start + n - 1."""
    out = nan_array(len(x))
    first = start + n - 1
    if len(x) <= first:
        return out
    xs = x.tolist()
    if seed is None:
        acc = 0.0
        for value in xs[start:first + 1]:
            acc += value
        seed = acc / n
    k = 2.0 / (n + 1)
    prev = seed
    res = [prev]
    for value in xs[first + 1:]:
        prev = (value - prev) * k + prev
        res.append(prev)
    out[first:] = res
    return out
