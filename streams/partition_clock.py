"""Partition clocks in the batch step: what a candle is judged by depends only on the candles before it.

Each partition's :class:`~learning.learner.OutcomeLearner` applies what its outcomes teach — the online
model's mini-batch, the adaptive thresholds' verdicts — when the partition's candle time moves on
(:meth:`OutcomeLearner.advance`): at a candle of time t it has applied every outcome labelled by the
partition's candles before t. A step can hold several candle times of one partition (single-candle
messages, a backlog); scoring them all with the learner as it was before the step would make a
prediction depend on where a worker cut its batches, and live and replay would differ. :func:`segments`
cuts the step's rows where a partition's clock moves on; the step advances each run's learners
(:func:`advance`), scores and labels the run, and queues its outcomes before the next run.

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
from typing import Any

__all__ = ["advance", "segments"]


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


def advance(indices: Sequence[int], learner_for: Callable[[int], tuple[Any, Any]],
            open_time_of: Callable[[int], int]) -> dict[Any, Any]:
    """Advance each learner of one run (from :func:`segments`) to the time of its first row there, which
    is what scoring the run's rows one by one would do; returns the run's learners by key."""
    touched: dict[Any, Any] = {}
    for i in indices:
        key, learner = learner_for(i)
        if key not in touched:
            touched[key] = learner
            learner.advance(open_time_of(i))
    return touched
