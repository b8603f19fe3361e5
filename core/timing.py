"""Timing a call the way the benchmarks and the distillation report do: the best of a few rounds.

A shared host only ever adds time to a measurement, so the least time over a few rounds is the nearest
to a call's own cost; each round repeats the call for at least ``min_seconds``, so a fast call is timed
over many repeats rather than against the clock's resolution. Several calls are timed side by side,
their rounds interleaved, so the host's load weighs on them alike.

>>> fast, slow = best_seconds([lambda: sum(range(10)), lambda: sum(range(10_000))], rounds=3, min_seconds=0.002)
>>> 0 < fast.wall < slow.wall, slow.cpu > 0
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

__all__ = ["Best", "best_seconds"]


class Best(NamedTuple):
    """Seconds per call, the best over the rounds: ``wall`` (elapsed) and ``cpu`` (the calling thread's CPU
    time: without the time other processes took the core, for code that computes on the calling thread)."""

    wall: float
    cpu: float


def best_seconds(calls: Sequence[Callable[[], Any]], rounds: int = 5, min_seconds: float = 0.05) -> list[Best]:
    """The :class:`Best` seconds per call of each of ``calls``: each called once to warm up, then ``rounds``
    rounds, the calls in turn, each repeated within a round until ``min_seconds`` have passed (at least once)."""
    for call in calls:
        call()
    best = [[float("inf"), float("inf")] for _ in calls]
    for _ in range(rounds):
        for call, mine in zip(calls, best):
            n, started, cpu = 0, time.perf_counter(), time.thread_time()
            while True:
                call()
                n += 1
                elapsed = time.perf_counter() - started
                if elapsed >= min_seconds:
                    break
            mine[0] = min(mine[0], elapsed / n)
            mine[1] = min(mine[1], (time.thread_time() - cpu) / n)
    return [Best(wall, cpu) for wall, cpu in best]
