"""The outcome loop's step for one batch of scored candles: label past predictions, learn, watch drift.

Runs in the candle agent right after scoring, so a prediction is labelled without a second trip
through Kafka: the candle at t labels the predictions of t - h (:class:`~learning.labelling.Labeller`,
one per series), the partition's :class:`~learning.learner.OutcomeLearner` learns from the labels, and
a drift watch that fires yields a retrain request. Pure: states come in as mappings and are updated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learning.labelling import Labelled, Labeller
from learning.learner import OutcomeLearner
from core.candle import Candle
from core.series_keys import series_key

__all__ = ["LoopResult", "label_and_learn", "learn_outcomes"]

@dataclass
class LoopResult:
    outcomes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (index of the labelling candle, Outcome)
    retrain_requests: list[dict[str, Any]] = field(default_factory=list)
    learners: dict[Any, int] = field(default_factory=dict)  # learner key -> index of the last candle that taught it
    # Not learned yet (``label_and_learn(..., learn=False)``): per scored candle in order, (index, its
    # open time, where it was read or None, the outcomes it labelled).
    unlearned: list[tuple[int, int, Any, list[Labelled]]] = field(default_factory=list)
    shadow_versions: set[str] = field(default_factory=set)  # versions whose outcomes only count, never teach
    queued: bool = False  # the online model's queue already has the outcomes (``label_and_learn(queue=True)``)


def label_and_learn(
    scored: Sequence[tuple[int, Candle, Mapping[str, Any]]],
    labellers: MutableMapping[str, Labeller],
    learner_for: Callable[[int], tuple[Any, OutcomeLearner]],
    learn: bool = True,
    shadow: Mapping[int, Mapping[str, Any]] | None = None,
    queue: bool = False,
    into: LoopResult | None = None,
    signal_ids: Mapping[int, str] | None = None,
    rows: Mapping[int, np.ndarray] | None = None,
    positions: Mapping[int, tuple[str, int, int] | None] | None = None,
) -> LoopResult:
    """``scored``: (index, candle, its prediction) in arrival order; ``learner_for(index)`` gives the
    (key, learner) of the candle's partition. Labellers missing from ``labellers`` start fresh.
    ``shadow``: index -> the shadow model's prediction of that candle, labelled too; the online model
    does not learn its outcomes (the active one's outcome of the same candle teaches it once).

    With ``learn=False`` the outcomes are only labelled; :func:`learn_outcomes` teaches them later, in
    the same order (the candle agent publishes a batch's predictions and signals in between).
    ``queue=True`` puts them on the online model's queue at once (the online member's next segment must
    find them there, streams/online_member.py); then only their counting and drift watches wait.
    ``into``: a result to add to (a step labels its segments one after another). ``signal_ids``: index ->
    the signal its prediction became (its outcome names it: the adaptive threshold's verdicts). ``rows``:
    index -> the float64 feature row its prediction was made from (else read from the record's list).
    ``positions``: index -> where the candle was read, (topic, partition, offset): a candle its partition's
    learner has learned already (:meth:`OutcomeLearner.has_learned`, a learner restored ahead of the series
    after a crash) is labelled again, and its outcomes published again with the same ids, but not learned twice.
    """
    result = into if into is not None else LoopResult()
    result.queued = result.queued or queue
    for index, candle, prediction in scored:
        key = series_key(candle.symbol, candle.timeframe)
        labeller = labellers.get(key)
        if labeller is None:
            labeller = labellers[key] = Labeller(candle.symbol, candle.timeframe)
        done = labeller.observe(candle)
        row = rows.get(index) if rows else None
        labeller.add_prediction(prediction, signal_ids.get(index) if signal_ids else None, row)
        if shadow and index in shadow:  # the shadow model's prediction of the same candle
            labeller.add_prediction(shadow[index], features=row)
            result.shadow_versions.add(shadow[index]["model_version"])
        result.outcomes += [(index, item.outcome) for item in done]
        position = positions.get(index) if positions else None
        result.unlearned.append((index, candle.open_time, position, done))
        learner = learner_for(index)[1] if queue and done else None
        if learner is not None and not learner.has_learned(position, candle.open_time):
            for item in done:
                if item.outcome["model_version"] not in result.shadow_versions:
                    learner.queue(item.outcome, item.features, item.confidence)
    return learn_outcomes(result, learner_for) if learn else result


def learn_outcomes(result: LoopResult, learner_for: Callable[[int], tuple[Any, OutcomeLearner]]) -> LoopResult:
    """Teach ``result.unlearned`` to their partitions' learners, candle by candle in order: each candle
    moves its partition's clock (:meth:`OutcomeLearner.advance`), then its outcomes are counted and
    queued; drift watches that fire add retrain requests. Updates ``result`` in place and returns it."""
    for index, open_time, position, done in result.unlearned:
        learner_key, learner = learner_for(index)
        if learner.has_learned(position, open_time):
            continue
        learner.advance(open_time)
        learner.mark_learned(position, open_time)
        result.learners[learner_key] = index
        for item in done:
            request = learner.update(item.outcome, item.features, learn_online=not result.queued
                                     and item.outcome["model_version"] not in result.shadow_versions,
                                     confidence=item.confidence)
            if request is not None:
                result.retrain_requests.append(request)
    result.unlearned = []
    return result
