"""From candles to stored patterns, and from a store to the consensus on a signal.

:func:`labelled_patterns` turns a symbol's close series into the patterns whose outcome is known
(every window that has ``horizon`` candles after it); :func:`signal_with_consensus` adds the k nearest
patterns' consensus to a signal record, as ``pattern_*`` fields (the columns of the ``signals`` table).

>>> import asyncio
>>> closes = np.exp(np.cumsum(np.r_[0.0, np.sin(np.arange(80) / 3) / 100]))
>>> times = np.arange(81) * 300_000
>>> vectors, metas = labelled_patterns(closes, times, "ETH-BTC", "5m", horizon=1)
>>> vectors.shape, metas[0].open_time, round(metas[0].outcome, 6) == round(float(np.log(closes[31] / closes[30])), 6)
((50, 35), 9000000, True)
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from storage.patterns.base import PatternMeta, PatternStore, consensus
from storage.patterns.embedding import DEFAULT_WINDOW, embed_window, embed_windows

__all__ = ["labelled_patterns", "signal_with_consensus"]


def labelled_patterns(closes: np.ndarray, open_times: np.ndarray, symbol: str, timeframe: str, *, horizon: int = 1,
                      window: int = DEFAULT_WINDOW) -> tuple[np.ndarray, list[PatternMeta]]:
    """Embeddings of every window of ``closes`` whose ``horizon``-ahead log return is known, with metadata."""
    closes = np.asarray(closes, dtype=np.float64)
    if len(closes) < window + 1 + horizon:
        return np.empty((0, window + 5), dtype=np.float32), []
    vectors = embed_windows(closes[:-horizon], window)  # row i ends at close index i + window
    ends = np.arange(window, len(closes) - horizon)
    outcomes = np.log(closes[ends + horizon] / closes[ends])
    metas = [PatternMeta(symbol, timeframe, int(open_times[e]), float(o)) for e, o in zip(ends, outcomes)]
    return vectors, metas


async def signal_with_consensus(signal: Mapping[str, Any], store: PatternStore, closes: np.ndarray, *, k: int = 20,
                                window: int = DEFAULT_WINDOW) -> dict[str, Any]:
    """``signal`` plus ``pattern_k``, ``pattern_bullish_share``, ``pattern_bearish_share``,
    ``pattern_mean_outcome`` and ``pattern_mean_similarity`` from the ``k`` nearest stored patterns
    to the window ending at the last of ``closes``."""
    neighbours = await store.query(embed_window(closes, window), k)
    return {**signal, **consensus(neighbours).as_fields()}
