"""The batch step: decoded candles plus the series they touch in, predictions, signals, outcomes out.

One pure function, :func:`process_batch`, is the whole per-batch work of the candle agent — features
for all the batch's symbols at once (:class:`~streams.series_book.SeriesBook`, the vectorised engine),
scoring with one call per model (:func:`streams.scoring.score_rows`), labelling and learning
(:func:`learning.loop.label_and_learn`) — with no Faust and no I/O. The agent decodes, calls it, emits
the result and hands the dirty series to the checkpoint (:mod:`agents.checkpoint`).

A candle whose series already covers it (a redelivery after a crash, :meth:`SeriesBook.covers`) is
skipped: its outputs were published before the state that contains it was written. The series is still
marked dirty, so the next checkpoint writes it again (a worker killed after writing its local store but
before the changelog had the state would otherwise leave the changelog behind).

>>> import numpy as np
>>> from core.candle import Candle
>>> from models.base import SingleHorizonModel
>>> class Bullish(SingleHorizonModel):  # any one-horizon model: a version, a horizon and predict_proba
...     version, horizon = "v1", 1
...     def predict_proba(self, rows): return np.full(len(rows), 0.9)
>>> book = SeriesBook()
>>> batch = [(Candle("ETH-BTC", "5m", 300_000 * i, 1.0, 1.1, 0.9, 1.0 + i / 100, 2.0), None, Position("c", 0, i))
...          for i in range(40)]
>>> result = process_batch(batch, book, Models(Bullish()), StepConfig(threshold=0.5))
>>> len(result.predictions), len(result.signals), sorted(result.dirty)
(40, 7, ['ETH-BTC|5m'])
>>> again = process_batch(batch[-3:], book, Models(Bullish()), StepConfig(threshold=0.5))
>>> len(again.predictions), again.redelivered, again.rejected
(0, [0, 1, 2], [])
>>> twice = [(Candle("ETH-BTC", "5m", 300_000 * 40, 1.0, 1.1, 0.9, 1.4, 2.0), None, Position("c", 0, 40))] * 2
>>> result = process_batch(twice, book, Models(Bullish()), StepConfig(threshold=0.5))  # one message, delivered twice
>>> len(result.predictions), result.redelivered, result.rejected
(1, [1], [])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learning.learner import OutcomeLearner
from learning.loop import LoopResult, label_and_learn, learn_outcomes
from learning.threshold import ThresholdConfig
from core.candle import Candle
from core.errors import InvalidInput
from features.names import N_FEATURES
from streams.online_member import online_parts
from streams.partition_clock import advance, segments
from streams.scoring import (WINDOW, ScoredBatch, SequenceStates, model_outputs, needs_windows, score_rows, serving_version,
                             step_members)
from core.series_keys import series_key
from streams.series import Position, covers
from streams.series_book import SeriesBook
from streams.serving_chain import step_versions

__all__ = ["BatchResult", "Models", "StepConfig", "SourcedCandle", "learn_batch", "process_batch"]

SourcedCandle = tuple[Candle, "int | None", "Position | None"]  # candle, produced at (ms), where it was read


@dataclass(frozen=True)
class Models:
    """The models a batch is scored with, taken once per batch (a hot reload may swap them meanwhile).

    ``shadow``: the candidate scores every candle beside the active model, on the same rows, and is never
    traded; its predictions are labelled like the active one's, so each candle yields an outcome of both
    (the paired A/B test, :class:`learning.promotion.PairedJudge`). Otherwise the candidate serves
    ``candidate_share`` of the symbols instead of the active model."""

    active: Any
    candidate: Any = None
    candidate_share: float = 0.0
    shadow: bool = False
    # The latency budget's chain (streams/serving_chain.py): a batch the full model would score over budget
    # is served by its distilled student. None (replay, backtests): the full model always serves.
    chain: Any = None

    def serving(self, symbol: str) -> Any:
        if self.shadow:
            return self.active
        return serving_version(symbol, self.active, self.candidate, self.candidate_share)

    @property
    def in_shadow(self) -> Any:
        """The model scoring in shadow (None: none; a candidate of the active version adds nothing)."""
        if not self.shadow or self.candidate is None or self.candidate.version == self.active.version:
            return None
        return self.candidate


@dataclass(frozen=True)
class StepConfig:
    threshold: float
    outcome_loop: bool = False
    # The River online member's largest weight in the main horizon (streams/online_member.py); 0: left out.
    online_weight: float = 0.0
    adaptive: ThresholdConfig | None = None  # the adaptive signal threshold (learning/threshold.py); None: fixed

    @classmethod
    def from_settings(cls, settings: Any) -> "StepConfig":
        """What a worker (and the replay, and the compute benchmark) runs with (core/settings.py)."""
        adaptive = ThresholdConfig(base=settings.signal_threshold, ceiling=settings.signal_threshold_max,
                                   from_trades=settings.adaptive_threshold_source == "trades") \
            if settings.adaptive_threshold else None
        return cls(settings.signal_threshold, settings.outcome_loop, settings.online_weight, adaptive)


@dataclass
class BatchResult:
    """Everything one batch produced. Indices refer to the input list."""

    predictions: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    signal_sources: list[int] = field(default_factory=list)
    prediction_sources: list[int] = field(default_factory=list)  # input index of each prediction
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    retrain_requests: list[dict[str, Any]] = field(default_factory=list)
    threshold_events: list[dict[str, Any]] = field(default_factory=list)  # adaptive threshold changes, in order
    rejected: list[tuple[int, InvalidInput]] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)  # already in their series: skipped
    dirty: dict[str, int] = field(default_factory=dict)  # series key -> index of its last candle here
    learners: dict[Any, int] = field(default_factory=dict)  # learner key -> index of the last candle that taught it
    loop: LoopResult | None = None  # the outcome loop's own result (its ``unlearned`` until :func:`learn_batch`)
    shadow_version: str | None = None  # the version scored in shadow (its outcomes are in ``outcomes`` too)

    @property
    def active_outcomes(self) -> list[dict[str, Any]]:
        """The outcomes of the models that serve (without the shadow model's repeats of the same candles)."""
        if self.shadow_version is None:
            return self.outcomes
        return [o for o in self.outcomes if o["model_version"] != self.shadow_version]


def process_batch(
    candles: Sequence[SourcedCandle],
    book: SeriesBook,
    models: Models,
    config: StepConfig,
    learner_for: Callable[[int], tuple[Any, OutcomeLearner]] | None = None,
    learn: bool = True,
) -> BatchResult:
    """Fold ``candles`` into their series in ``book`` (updated in place) and score them.

    ``learner_for(index)`` gives the (key, learner) of the candle at ``index`` (its partition's online
    model and drift watch); it is needed when ``config.outcome_loop`` or ``config.online_weight`` is on.
    With ``learn=False`` the outcomes are labelled but not learned: :func:`learn_batch` does that part,
    with the same result, so a caller can publish the predictions and signals first. Either way this
    batch is scored with the learners as they were before it.
    """
    result = BatchResult()
    fresh: list[int] = []  # input indices that go to the feature engine
    # The furthest (position, open time) a fresh candle of each series reached in this batch: a consumer
    # that reads a partition again from its committed offset can deliver a message twice in one batch.
    taken: dict[str, tuple[Position, int]] = {}
    for index, (candle, _, position) in enumerate(candles):
        key = series_key(candle.symbol, candle.timeframe)
        if position is not None and (book.covers(key, position, candle.open_time)
                                     or key in taken and covers(*taken[key], position, candle.open_time)):
            result.redelivered.append(index)
            result.dirty[key] = index
            continue
        fresh.append(index)
        if position is not None and (key not in taken or taken[key][1] < candle.open_time):
            taken[key] = (position, candle.open_time)
    if not fresh:
        return result

    serving = [models.serving(candles[i][0].symbol) for i in fresh]
    chain = models.chain
    routed: dict[int, Any] = {}  # id(student) -> the full model it serves for, in this batch
    if chain is not None:
        serving, routed = chain.route(serving)
    in_shadow = models.in_shadow
    windows = np.full((len(fresh), WINDOW, N_FEATURES), np.nan, dtype=np.float32) \
        if any(needs_windows(m) for m in {id(m): m for m in [*serving, in_shadow] if m is not None}.values()) else None
    rows, ready, rejected = book.fold([candles[i][0] for i in fresh], windows)
    result.rejected = [(fresh[j], exc) for j, exc in rejected]
    refused = {j for j, _ in rejected}
    accepted = [(fresh[j], candles[fresh[j]][0], candles[fresh[j]][1], bool(ready[j]), rows[j],
                 windows[j] if windows is not None else None, serving[j])
                for j in range(len(fresh)) if j not in refused]
    learning = config.outcome_loop and learner_for is not None
    online = learning and config.online_weight > 0
    adaptive = learning and config.adaptive is not None
    clocked = online or adaptive  # what a candle is judged by depends on its partition's past outcomes
    runs = segments([a[0] for a in accepted], lambda i: learner_for(i)[1], lambda i: candles[i][0].open_time) \
        if clocked else [[a[0] for a in accepted]]
    by_index = {a[0]: a for a in accepted}
    scored = ScoredBatch()
    shadow_model = in_shadow if learning else None  # scored only where its outcomes are judged
    result.shadow_version = shadow_model.version if shadow_model is not None else None
    loop = LoopResult()
    touched: dict[Any, Any] = {}
    # The recurrent state of each series for the step members of every model serving now (models/mamba/recurrent.py).
    keep = frozenset(m.model.version for model in (models.active, models.candidate) if model is not None
                     for m in step_members(model))
    sequences = SequenceStates(book.sequences, keep)
    if routed:  # the full models' step states do not step the candles their students serve: they lag
        _skip_steps(accepted, routed, book)
    # The models read only the rows: the whole batch in one call per model, then records run by run (a
    # one-series backtest is a run per candle).
    timings: list[tuple[Any, int, float]] | None = [] if chain is not None else None
    outputs = model_outputs(accepted, sequences, timings)
    if chain is not None:
        chain.observe(timings, routed)
    shadow_outputs = model_outputs([(*a[:6], shadow_model) for a in accepted], sequences) if shadow_model is not None else None
    for run in runs:  # one run unless clocked (streams/partition_clock.py)
        mine = [by_index[i] for i in run]
        members = thresholds = None
        if clocked:
            learners = {key: learner for key, learner in (learner_for(i) for i in run)}
            for learner in learners.values():
                learner.configure_thresholds(config.adaptive if adaptive else None)
            touched.update(advance(run, learner_for, lambda i: candles[i][0].open_time))
        if online:
            members = online_parts([(a[0], a[4], a[6]) for a in mine], lambda i: learner_for(i)[1], config.online_weight)
        if adaptive:
            thresholds = {a[0]: learner_for(a[0])[1].threshold(a[6].version, config.threshold) for a in mine}
        first, first_signal = len(scored.predictions), len(scored.signals)
        score_rows(mine, config.threshold, members, scored, thresholds, outputs=outputs)
        shadow: dict[int, dict[str, Any]] = {}
        if shadow_model is not None:
            # Never traded (its signals are dropped here): only labelled, for the paired comparison. The
            # online member joins it as it joins the active model: the pair differs only in the batch model.
            shadowed = score_rows([(*a[:6], shadow_model) for a in mine], 1.0, members, outputs=shadow_outputs)
            shadow = dict(zip(shadowed.sources, shadowed.predictions))
        if learning:
            rows_in_order = [(i, candles[i][0], p) for i, p in zip(scored.sources[first:], scored.predictions[first:])]
            signal_ids = {i: s["id"] for i, s in zip(scored.signal_sources[first_signal:], scored.signals[first_signal:])}
            label_and_learn(rows_in_order, book.labellers, learner_for, learn=False, shadow=shadow, queue=clocked,
                            into=loop, signal_ids=signal_ids, rows={a[0]: a[4] for a in mine},
                            positions={a[0]: candles[a[0]][2] for a in mine})
    for key, learner in touched.items():
        result.threshold_events += [{"partition": str(key), **event} for event in learner.threshold_events]
        learner.threshold_events = []
    result.predictions, result.signals = scored.predictions, scored.signals
    result.signal_sources, result.prediction_sources = scored.signal_sources, scored.sources
    for i in scored.sources:
        candle, _, position = candles[i]
        key = series_key(candle.symbol, candle.timeframe)
        if position is not None:
            book.positions[key] = position
        result.dirty[key] = i
    if config.outcome_loop and learner_for is not None:
        result.loop = loop
        result.outcomes = [outcome for _, outcome in loop.outcomes]
        if learn:
            learn_batch(result, learner_for)
    return result


def _skip_steps(accepted: Sequence[tuple], routed: dict[int, Any], book: SeriesBook) -> None:
    """The candles a student serves are not stepped by the full model's step members: each such series'
    state lags by them, and is caught up from its window when the full model next scores it."""
    for student_id, full in routed.items():
        versions = step_versions(full)
        if versions:
            book.sequences.skip([series_key(a[1].symbol, a[1].timeframe) for a in accepted if id(a[6]) == student_id],
                                versions)


def learn_batch(result: BatchResult, learner_for: Callable[[int], tuple[Any, OutcomeLearner]]) -> BatchResult:
    """The learning half of a step run with ``learn=False``: the partitions' learners learn the batch's
    outcomes (in order) and drift watches may ask for a retrain. In place; returns ``result``."""
    if result.loop is not None:
        learn_outcomes(result.loop, learner_for)
        result.learners, result.retrain_requests = result.loop.learners, result.loop.retrain_requests
    return result
