"""Embedding of a symbol's recent window: what "a similar pattern" means.

The vector is scale-free, so BTC pairs and alt pairs, calm and wild periods, compare by *shape*:

- ``window`` log returns of the closes, z-scored within the window (mean 0, std 1): the path's shape
  regardless of its volatility level;
- five shape features, each roughly in [-3, 3] and weighted to count about as much as a few returns:
  trend strength (sum of returns / (std * sqrt(n)), a t-statistic), volatility regime
  (log of the last third's std over the whole window's), where the last close sits in the window's
  close range (-1 bottom .. 1 top), share of up moves (centred), and the largest drawdown in units of
  the window's return std;
- the whole vector is L2-normalised, so inner product = cosine similarity and every index can use it.

Pure numpy; :func:`embed_windows` embeds every sliding window of a series at once (for back-filling a
store from history) and agrees with :func:`embed_window` on each one.

>>> closes = np.exp(np.cumsum(np.r_[0.0, np.sin(np.arange(40) / 3) / 100]))
>>> v = embed_window(closes)
>>> v.shape, v.dtype, round(float(np.linalg.norm(v)), 6)
((35,), dtype('float32'), 1.0)
>>> bool(np.allclose(embed_windows(closes)[-1], v))
True
>>> bool(np.allclose(embed_window(closes * 1000.0), v, atol=1e-6))  # price level does not matter
True
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.errors import InvalidInput

__all__ = ["DEFAULT_WINDOW", "SHAPE_FEATURES", "embed_window", "embed_windows", "embedding_dim"]

DEFAULT_WINDOW = 30
SHAPE_FEATURES = ("trend_t", "vol_regime", "range_position", "up_share", "max_drawdown")
_EPS = 1e-12


def embedding_dim(window: int = DEFAULT_WINDOW) -> int:
    return window + len(SHAPE_FEATURES)


def embed_window(closes: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Embed the last ``window`` returns of ``closes`` (needs ``window + 1`` closes)."""
    closes = np.asarray(closes, dtype=np.float64)
    if closes.shape[0] < window + 1:
        raise InvalidInput(f"pattern window needs {window + 1} closes, got {closes.shape[0]}")
    return embed_windows(closes[-(window + 1):], window)[0]


def embed_windows(closes: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Embed every window of ``closes``; row i ends at close ``i + window`` (float32, n x dim)."""
    closes = np.asarray(closes, dtype=np.float64)
    if closes.ndim != 1 or closes.shape[0] < window + 1:
        raise InvalidInput(f"pattern windows need a 1-d series of >= {window + 1} closes")
    if not np.all(np.isfinite(closes)) or np.any(closes <= 0):
        raise InvalidInput("pattern windows need finite, positive closes")
    returns = np.diff(np.log(closes))
    r = sliding_window_view(returns, window)  # (n, window), a view: no copy until the math below
    mean = r.mean(axis=1, keepdims=True)
    std = r.std(axis=1, keepdims=True)
    safe = np.maximum(std, _EPS)
    z = (r - mean) / safe
    z[std[:, 0] < _EPS] = 0.0  # a flat window has no shape; zeros, not noise amplified by 1/eps

    trend = r.sum(axis=1) / (safe[:, 0] * np.sqrt(window))
    third = max(window // 3, 2)
    vol_regime = np.log(np.maximum(r[:, -third:].std(axis=1), _EPS) / safe[:, 0])
    path = np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(r, axis=1)], axis=1)  # log price, 0-based
    lo, hi = path.min(axis=1), path.max(axis=1)
    position = 2.0 * (path[:, -1] - lo) / np.maximum(hi - lo, _EPS) - 1.0
    up_share = 2.0 * ((r > 0).mean(axis=1) - 0.5)
    drawdown = (np.maximum.accumulate(path, axis=1) - path).max(axis=1) / (safe[:, 0] * np.sqrt(window))
    shape = np.stack([trend, np.clip(vol_regime, -3, 3), position, up_share, -drawdown], axis=1)
    shape *= np.sqrt(window / len(SHAPE_FEATURES))

    v = np.concatenate([z, shape], axis=1)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), _EPS)
    return v.astype(np.float32)
