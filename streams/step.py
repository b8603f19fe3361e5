"""The batch step: decoded candles plus the series they touch in, predictions, signals, outcomes out.

One pure function, :func:`process_batch`, is the whole per-batch work of the candle agent — feature
update, scoring (:func:`streams.scoring.score_candles`), labelling and learning
(:func:`learning.loop.label_and_learn`) — with no Faust and no I/O. The agent decodes, calls it, emits
the result and hands the dirty series to the checkpoint (:mod:`agents.checkpoint`); replay, ``POST
/predict`` and the benchmarks can call the same step.

A candle whose series already covers it (a redelivery after a crash, :meth:`SeriesState.covers`) is
skipped: its outputs were published before the state that contains it was written. The series is still
marked dirty, so the next checkpoint writes it again (a worker killed after writing its local store but
before the changelog had the state would otherwise leave the changelog behind).

>>> import numpy as np
>>> from streams.candle import Candle
>>> class Bullish:  # any model with a version, a horizon and predict_proba
...     version, horizon = "v1", 1
...     def predict_proba(self, rows): return np.full(len(rows), 0.9)
>>> series = {}
>>> batch = [(Candle("ETH-BTC", "5m", 300_000 * i, 1.0, 1.1, 0.9, 1.0 + i / 100, 2.0), None, Position("c", 0, i))
...          for i in range(40)]
>>> result = process_batch(batch, series, Models(Bullish()), StepConfig(threshold=0.5))
>>> len(result.predictions), len(result.signals), sorted(result.dirty)
(40, 7, ['ETH-BTC|5m'])
>>> again = process_batch(batch[-3:], series, Models(Bullish()), StepConfig(threshold=0.5))
>>> len(again.predictions), again.redelivered, again.rejected
(0, [0, 1, 2], [])
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from learning.labelling import Labeller
from learning.learner import OutcomeLearner
from learning.loop import label_and_learn
from streams.candle import Candle
from streams.errors import InvalidInput
from streams.scoring import score_candles
from streams.series import Position, SeriesState, series_key

__all__ = ["BatchResult", "Models", "StepConfig", "SourcedCandle", "process_batch"]

SourcedCandle = tuple[Candle, "int | None", "Position | None"]  # candle, produced at (ms), where it was read


@dataclass(frozen=True)
class Models:
    """The models a batch is scored with, taken once per batch (a hot reload may swap them meanwhile)."""

    active: Any
    candidate: Any = None
    candidate_share: float = 0.0


@dataclass(frozen=True)
class StepConfig:
    threshold: float
    outcome_loop: bool = False
    online_weight: float = 0.0


@dataclass
class BatchResult:
    """Everything one batch produced. Indices refer to the input list."""

    predictions: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    signal_sources: list[int] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    retrain_requests: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, InvalidInput]] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)  # already in their series: skipped
    dirty: dict[str, int] = field(default_factory=dict)  # series key -> index of its last candle here
    learners: dict[Any, int] = field(default_factory=dict)  # learner key -> index of the last candle that taught it


def process_batch(
    candles: Sequence[SourcedCandle],
    series: MutableMapping[str, SeriesState],
    models: Models,
    config: StepConfig,
    learner_for: Callable[[int], tuple[Any, OutcomeLearner]] | None = None,
) -> BatchResult:
    """Fold ``candles`` into their ``series`` (updated in place; missing keys start fresh) and score them.

    ``learner_for(index)`` gives the (key, learner) of the candle at ``index`` (its partition's online
    model and drift watch); it is needed when ``config.outcome_loop`` or ``config.online_weight`` is on.
    """
    result = BatchResult()
    fresh: list[int] = []  # input indices that go to the scorer
    for index, (candle, _, position) in enumerate(candles):
        key = series_key(candle.symbol, candle.timeframe)
        state = series.get(key)
        if state is None:
            state = series[key] = SeriesState()
        if state.covers(position, candle.open_time):
            result.redelivered.append(index)
            result.dirty[key] = index
        else:
            fresh.append(index)
    if not fresh:
        return result

    features = {}
    for i in fresh:
        c = candles[i][0]
        key = series_key(c.symbol, c.timeframe)
        features[key] = series[key].features
    online = None
    if learner_for is not None and config.online_weight > 0:
        online = lambda j: learner_for(fresh[j])[1].online  # noqa: E731 - index into the scorer's input
    scored = score_candles([(candles[i][0], candles[i][1]) for i in fresh], features, models.active, config.threshold,
                           models.candidate, models.candidate_share, online, config.online_weight)
    result.rejected = [(fresh[j], exc) for j, exc in scored.rejected]
    result.predictions = scored.predictions
    result.signals = scored.signals
    result.signal_sources = [fresh[j] for j in scored.signal_sources]
    sources = [fresh[j] for j in scored.sources]
    for i in sources:
        candle, _, position = candles[i]
        key = series_key(candle.symbol, candle.timeframe)
        series[key].position = position
        result.dirty[key] = i

    if config.outcome_loop and learner_for is not None:
        labellers = _Labellers(series)
        rows = [(i, candles[i][0], p) for i, p in zip(sources, scored.predictions)]
        learned = label_and_learn(rows, labellers, learner_for)
        for i, outcome in learned.outcomes:
            result.outcomes.append(outcome)
            result.learners[learner_for(i)[0]] = i
        result.retrain_requests = learned.retrain_requests
    return result


class _Labellers(dict):
    """The labeller of each series, as the mapping :func:`learning.loop.label_and_learn` works on."""

    def __init__(self, series: MutableMapping[str, SeriesState]) -> None:
        super().__init__()
        self._series = series

    def get(self, key: str, default: Any = None) -> Labeller | None:
        labeller = self._series[key].labeller
        return default if labeller is None else labeller

    def __setitem__(self, key: str, labeller: Labeller) -> None:
        self._series[key].labeller = labeller
