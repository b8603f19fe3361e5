"""The River online model as a member of the ensemble, deterministic however the candles were batched.

Each partition's :class:`~learning.learner.OutcomeLearner` holds an online model that learns the partition's
outcomes in mini-batches cut by candle time (streams/partition_clock.py): at a candle of time t it has
learned every outcome labelled by the partition's candles before t. Its say in that candle's main-horizon
P(up) is :meth:`~learning.online.OnlineModel.member_weight` (0 until it has learned and been judged enough,
then following its recent test-then-train accuracy against the batch model's validation accuracy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Blend", "blend", "blend_segment"]


class Blend(NamedTuple):
    """The online member's part in one candle's main horizon."""

    weight: float
    p_up: float
    version: str


def blend_segment(rows: Sequence[tuple[int, np.ndarray, Any]], learner_of: Callable[[int], Any],
                  max_weight: float) -> dict[int, Blend]:
    """The online member's part for each row of one run of a step (streams/partition_clock.py, its
    learners advanced): ``rows`` are (index, feature row, serving model); each learner scores
    its rows in one call. Rows whose member weight is 0 are left out."""
    by_learner: dict[int, tuple[Any, list[tuple[int, np.ndarray, Any]]]] = {}
    for row in rows:
        learner = learner_of(row[0])
        by_learner.setdefault(id(learner), (learner, []))[1].append(row)
    out: dict[int, Blend] = {}
    for learner, mine in by_learner.values():
        online, weight_of = learner.online, {}
        for _, _, serving in mine:  # once per serving model: the weight sums the last 500 verdicts
            if id(serving) not in weight_of:
                reference = learner.training_accuracy.get(serving.version, {}).get(serving.horizon)
                weight_of[id(serving)] = online.member_weight(max_weight, reference)
        weights = [weight_of[id(serving)] for _, _, serving in mine]
        if not any(weights):
            continue
        p = online.predict_many(np.vstack([features for _, features, _ in mine])).tolist()
        out.update({index: Blend(w, q, online.version) for (index, _, _), w, q in zip(mine, weights, p) if w > 0})
    return out


def blend(p_model: float, confidence: float, member: Blend) -> tuple[float, float]:
    """(P(up), confidence) with the online member in: P(up) is the weighted mean; confidence the weighted
    mean of each side's confidence signed by its direction, so for a single model (confidence
    |2p - 1|) it is exactly |2 P(up) - 1|, and for a bundle its agreement-based confidence is kept in.

    >>> blend(0.8, 0.6, Blend(0.5, 0.3, "river"))  # the online member disagrees: halfway between
    (0.55, 0.1)
    """
    w = member.weight
    p_up = (1.0 - w) * p_model + w * member.p_up
    signed = (1.0 - w) * (confidence if p_model >= 0.5 else -confidence) + w * (2.0 * member.p_up - 1.0)
    return p_up, round(max(signed if p_up >= 0.5 else -signed, 0.0), 12)
