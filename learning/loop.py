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

from learning.labelling import Labeller
from learning.learner import OutcomeLearner
from streams.candle import Candle
from streams.series import series_key

__all__ = ["LoopResult", "label_and_learn"]

@dataclass
class LoopResult:
    outcomes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (index of the labelling candle, Outcome)
    retrain_requests: list[dict[str, Any]] = field(default_factory=list)
    learners: set[Any] = field(default_factory=set)  # learner keys that changed


def label_and_learn(
    scored: Sequence[tuple[int, Candle, Mapping[str, Any]]],
    labellers: MutableMapping[str, Labeller],
    learner_for: Callable[[int], tuple[Any, OutcomeLearner]],
) -> LoopResult:
    """``scored``: (index, candle, its prediction) in arrival order; ``learner_for(index)`` gives the
    (key, learner) of the candle's partition. Labellers missing from ``labellers`` start fresh."""
    result = LoopResult()
    for index, candle, prediction in scored:
        key = series_key(candle.symbol, candle.timeframe)
        labeller = labellers.get(key)
        if labeller is None:
            labeller = labellers[key] = Labeller(candle.symbol, candle.timeframe)
        done = labeller.observe(candle)
        labeller.add_prediction(prediction)
        if not done:
            continue
        learner_key, learner = learner_for(index)
        result.learners.add(learner_key)
        for item in done:
            result.outcomes.append((index, item.outcome))
            request = learner.update(item.outcome, item.features)
            if request is not None:
                result.retrain_requests.append(request)
    return result
