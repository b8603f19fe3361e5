"""The River online model as a member of the ensemble, deterministic however the candles were batched.

Each partition's :class:`~learning.learner.OutcomeLearner` holds an online model that learns the partition's
outcomes in mini-batches cut by candle time: at a candle of time t it has learned every outcome labelled
by the partition's candles before t (:meth:`OutcomeLearner.advance`). Its say in that candle's main-horizon
P(up) is :meth:`~learning.online.OnlineModel.member_weight` (0 until it has learned and been judged enough,
then following its recent test-then-train accuracy against the batch model's validation accuracy).

A step can hold several candle times of one partition (single-candle messages, a backlog). Scoring them
all with the learner as it was before the step would make a prediction depend on where a worker cut its
batches, so live and replay would differ. :func:`segments` cuts the step's rows where a partition's clock
moves on; the step scores and labels one segment at a time, teaching each segment's outcomes to the
online model's queue before the next segment moves the clock (its mini-batch is learned then).

>>> class Learner:  # what segments needs of a learner: the partition's clock
...     watermark = 0
>>> a, b = Learner(), Learner()
>>> learner_of = {0: a, 1: b, 2: a, 3: a, 4: b}
>>> times = {0: 300, 1: 300, 2: 300, 3: 600, 4: 0}
>>> segments([0, 1, 2, 3, 4], lambda i: learner_of[i], times.get)  # a's clock moves on at row 3
[[0, 1, 2], [3, 4]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Blend", "blend", "blend_segment", "segments"]


class Blend(NamedTuple):
    """The online member's part in one candle's main horizon."""

    weight: float
    p_up: float
    version: str


def segments(indices: Sequence[int], learner_of: Callable[[int], Any],
             open_time_of: Callable[[int], int]) -> list[list[int]]:
    """Cut ``indices`` (rows in arrival order) into runs within which no partition's clock moves past the
    time its first row there set: scoring a run with each learner advanced to that time then equals
    scoring the rows one by one."""
    out: list[list[int]] = []
    current: list[int] = []
    in_current: set[int] = set()  # id() of the learners with a row in ``current``
    clock: dict[int, int | None] = {}  # id(learner) -> its watermark once the rows so far are scored
    for i in indices:
        learner, t = learner_of(i), open_time_of(i)
        key = id(learner)
        if key not in clock:
            clock[key] = learner.watermark
        moves = clock[key] is None or t > clock[key]
        if moves and key in in_current:  # its clock would move past outcomes labelled in this run
            out.append(current)
            current, in_current = [], set()
        if moves:
            clock[key] = t
        in_current.add(key)
        current.append(i)
    if current:
        out.append(current)
    return out


def blend_segment(rows: Sequence[tuple[int, int, np.ndarray, Any]], learner_of: Callable[[int], Any],
                  max_weight: float) -> dict[int, Blend]:
    """The online member's part for each row of one segment: ``rows`` are (index, open time, feature row,
    serving model). Each learner is first advanced to the time of its first row (its queued outcomes are
    learned), then scores its rows in one call. Rows whose member weight is 0 are left out."""
    by_learner: dict[int, tuple[Any, list[tuple[int, int, np.ndarray, Any]]]] = {}
    for row in rows:
        learner = learner_of(row[0])
        by_learner.setdefault(id(learner), (learner, []))[1].append(row)
    out: dict[int, Blend] = {}
    for learner, mine in by_learner.values():
        learner.advance(mine[0][1])
        online = learner.online
        weights = [online.member_weight(max_weight, learner.training_accuracy.get(serving.version, {}).get(serving.horizon))
                   for _, _, _, serving in mine]
        if not any(weights):
            continue
        p = online.predict_many(np.vstack([features for _, _, features, _ in mine])).tolist()
        out.update({index: Blend(w, q, online.version) for (index, _, _, _), w, q in zip(mine, weights, p) if w > 0})
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
