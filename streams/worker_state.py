"""What a worker sets on its :class:`streams.app.Pipeline` after ``create_app``: the models it serves and
the objects its agents and views attach (``pipeline.worker``).

``create_app`` declares everything fixed for the app's life (topics, tables, codecs, statistics). The fields
here start empty and are filled later, each by one owner, named beside it; every reader must allow for the
empty value until then (a view answers before the model is loaded, a worker without sinks has none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from models.base import ServableModel
    from storage.patterns.base import PatternStore
    from streams.series import SeriesState
    from streams.series_book import SeriesBook

__all__ = ["LiveState", "SignalFeedStats", "WorkerState"]


class SignalFeedStats(Protocol):
    """What the runtime reads of the web's shared signal feed (``candleflow.web.signal_stream.SignalFeed``: the
    entry points sit above streams/): its statistics, for ``/stats``."""

    def stats(self) -> dict[str, Any]:
        """Clients, their limit, whether its consumer runs, clients dropped for being slow."""


class LiveState(Protocol):
    """What the views read of the candle agent's live state (an ``agents.checkpoint.Checkpoint``: agents/ sits
    above streams/, which names only this much of it). Read under ``batch_lock``: a batch may be changing it."""

    batch_lock: asyncio.Lock
    series: SeriesBook  # the live series
    learners: Mapping[str, Any]  # the partitions' online learners and drift watches, by learner key

    def current(self, key: str) -> SeriesState | None:
        """The newest state of series ``key`` this worker has, live or from its table."""


@dataclass
class WorkerState:
    """The runtime state of one worker, owned by its pipeline (module docstring).

    >>> state = WorkerState()
    >>> state.model is None and state.candidate is None and state.checkpoint is None
    True
    """

    # The models, all set by the model-events agent (agents/model_events.py) as deployments arrive, except
    # the first model: candleflow/worker.py sets it before the worker starts. No model: /ready says 503.
    model: ServableModel | None = None  # the active model; the candle agent takes it once per batch
    candidate: tuple[ServableModel, float] | None = None  # (candidate model, share of symbols it serves)
    model_errors: list[str] = field(default_factory=list)  # models that failed to load, newest last

    # The attachments, each set once when the worker is put together (candleflow/worker.py).
    # The candle agent's live series and learners and their write-behind protocol: agents/attach.py, before
    # it attaches any agent.
    checkpoint: LiveState | None = None
    # sink name -> its stats(): agents/sinks.py, as it attaches each sink (empty: no sinks configured).
    sink_stats: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    # The /signals/stream clients' shared consumer: candleflow/web/signals.py, as it attaches its views.
    signal_feed: SignalFeedStats | None = None
    # The pattern store: opened by agents/patterns.py's task once the worker runs, retried while the store
    # is down; None while pattern search is off or the store not open yet (signals go out without it).
    patterns: PatternStore | None = None
