"""Pattern search in the stream: each signal gets the consensus of the k most similar past patterns,
and every labelled prediction adds its pattern (the window it was made from, and what followed).

Enabled by ``CANDLEFLOW_PATTERNS=on``: FAISS in the worker (the symbols it owns), or Weaviate, shared by
all workers, when ``CANDLEFLOW_WEAVIATE_URL`` is set. The windows are the closes kept in each symbol's
feature window (its last 60 candles), so no other history is needed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from storage.patterns import open_pattern_store
from storage.patterns.base import PatternMeta, consensus
from storage.patterns.embedding import DEFAULT_WINDOW, embed_window
from streams.app import Pipeline
from core.candle import timeframe_ms
from features import FEATURE_NAMES
from core.series_keys import series_key

__all__ = ["attach_pattern_store", "add_consensus", "remember_patterns"]

log = logging.getLogger(__name__)

_CLOSE = FEATURE_NAMES.index("close")


def _closes(window: np.ndarray, drop_last: int = 0) -> np.ndarray | None:
    """The closes of a window of feature vectors, when there are enough of them and all are prices."""
    closes = window[: len(window) - drop_last, _CLOSE].astype(np.float64)
    return closes if len(closes) > DEFAULT_WINDOW and np.all(np.isfinite(closes)) and np.all(closes > 0) else None


def attach_pattern_store(pipeline: Pipeline) -> None:
    @pipeline.app.task
    async def open_patterns() -> None:
        # An enrichment: while the store cannot be opened (Weaviate down at start), signals go out without it.
        while pipeline.worker.patterns is None:
            try:
                pipeline.worker.patterns = await open_pattern_store(pipeline.settings.storage, pipeline.settings.patterns)
            except Exception as exc:  # noqa: BLE001 - whatever the store's client raises, try again later
                log.warning("pattern store unavailable (%s); signals go out without a consensus, next try in %.0f s",
                            exc, pipeline.pattern_calls.cooldown_s)
                await asyncio.sleep(pipeline.pattern_calls.cooldown_s)
        log.info("pattern search on: %s", type(pipeline.worker.patterns).__name__)


async def add_consensus(pipeline: Pipeline, signal: dict[str, Any]) -> dict[str, Any]:
    """The signal with ``pattern_*`` fields from the k nearest stored patterns (unchanged while none, and
    while the store fails or is slow: see :class:`core.best_effort.BestEffort`)."""
    closes = _closes(pipeline.worker.checkpoint.series.window(series_key(signal["symbol"], signal["timeframe"])))
    patterns = pipeline.worker.patterns
    if patterns is None or closes is None:
        return signal
    neighbours = await pipeline.pattern_calls.call(
        lambda: patterns.query(embed_window(closes), pipeline.settings.patterns.k), default=[])
    fields = consensus(neighbours).as_fields() if neighbours else {}
    return {**signal, **fields}


async def remember_patterns(pipeline: Pipeline, outcomes: list[dict[str, Any]]) -> None:
    """Store the pattern behind each horizon-1 label: the window up to the labelled candle, cut from
    the symbol's feature state, and the return that followed it."""
    if pipeline.worker.patterns is None:
        return
    vectors, metas = [], []
    for outcome in outcomes:
        if outcome["horizon"] != 1 or outcome.get("realized_log_return") is None:
            continue
        key = series_key(outcome["symbol"], outcome["timeframe"])
        last = pipeline.worker.checkpoint.series.last_open_time(key)
        if last is None:
            continue
        # The series may be several candles past the labelled one (a batch holds many): cut back to it.
        later = (last - outcome["open_time"]) // timeframe_ms(outcome["timeframe"])
        closes = _closes(pipeline.worker.checkpoint.series.window(key), drop_last=int(later)) if later >= 1 else None
        if closes is None:
            continue
        vectors.append(embed_window(closes))
        metas.append(PatternMeta(outcome["symbol"], outcome["timeframe"], outcome["open_time"], outcome["realized_log_return"]))
    if vectors:
        patterns = pipeline.worker.patterns
        await pipeline.pattern_calls.call(lambda: patterns.add(np.vstack(vectors), metas), default=None)
