"""Every offset of a candle partition processed once, in order: Faust can skip one around a rebalance.

Seen here (the failover test, about one run in thirty): right after a worker took over partitions,
Faust handed the candle agent offset 70 and then 72 of one partition. Offset 71 never came; Faust's
fetcher took the hole for a compacted range (``Consumer._add_gap``) and committed past it, so that
candle's prediction never existed. Candle topics are never compacted, so a hole is most likely a lost
message; only a transactional producer's commit marker occupies an offset without one.

:class:`OffsetGuard` sits in front of the batch step: per candle partition it knows the next offset
to process. A message past it reveals a hole: it is held back with every later message of that
partition, and the agent asks the broker what lies at the hole (:meth:`OffsetGuard.resolve`): a
message, and the partition is read again from the hole; nothing (a marker), and it goes on from the
first message after it. A message before the next offset (Faust delivering again what this worker
already processed) passes; the step skips its candles as already in their series. Messages Faust had
fetched before a seek may still come first: they are held back again, and the partition sought again.
A message lost at the very end of a fetch has no later one to reveal it: a partition whose next offset
the broker has but that does not move for a while is read again too (:meth:`OffsetGuard.stalled`).
The guard forgets everything when partitions move; the next offset is then the partition's committed
offset when the consumer knows it (:meth:`OffsetGuard.start`), else the first one delivered. Faust
can skip the very first message of a partition it was just given (its commit check lets a gap of one
at the committed offset pass), and nothing later would reveal that hole.
The app also keeps Faust from marking holes in these topics as done (``streams.faust_transport``), so
no commit passes a hole before it is processed.

>>> guard = OffsetGuard()
>>> guard.admit([("c", 0, 70), ("c", 0, 72), ("c", 0, 73), ("c", 1, 5)])
Admitted(indices=[0, 3], holes={('c', 0): 71}, seek={})
>>> guard.resolve(("c", 0), 71, first_present=71)  # the broker has offset 71: read from it again
71
>>> guard.admit([("c", 0, 74), ("c", 0, 71), ("c", 0, 72)])  # 74 was fetched before the seek
Admitted(indices=[], holes={}, seek={('c', 0): 71})
>>> guard.admit([("c", 0, 71), ("c", 0, 72), ("c", 0, 70)])
Admitted(indices=[0, 1, 2], holes={}, seek={})
>>> guard.admit([("c", 1, 7)]).holes, guard.resolve(("c", 1), 6, first_present=7)  # offset 6 holds no message
({('c', 1): 6}, 7)
>>> guard.admit([("c", 1, 7)]).indices
[0]
>>> guard.stalled(lambda tp: 120 if tp == ("c", 0) else None, now=15.0)  # 73..119 fetched by nobody
{('c', 0): 73}
>>> guard.reset()  # given the partition again, committed at 120; Faust skipped the first one
>>> guard.admit([("c", 0, 121)], committed=lambda tp: 120).holes
{('c', 0): 120}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

__all__ = ["Admitted", "OffsetGuard"]

TopicPartition = tuple[str, int]


class Admitted(NamedTuple):
    indices: list[int]  # the messages to process now, in order
    holes: dict[TopicPartition, int]  # new holes: first offset not delivered (ask the broker: resolve)
    seek: dict[TopicPartition, int]  # partitions to read again from a hole known to hold a message


class OffsetGuard:
    """The next offset to process per (topic, partition) of one assignment."""

    def __init__(self) -> None:
        self._next: dict[TopicPartition, int] = {}
        self._hole: dict[TopicPartition, int] = {}  # holes that hold a message, not delivered yet
        self._moved: dict[TopicPartition, float] = {}  # when each partition last moved on (monotonic s)

    def reset(self) -> None:
        """Partitions moved: where each one continues is whatever Faust delivers first."""
        self._next.clear()
        self._hole.clear()
        self._moved.clear()

    def start(self, tp: TopicPartition, committed: int | None) -> None:
        """``tp`` continues at ``committed`` (the consumer's committed offset; None: unknown, the first
        message delivered says where). Only before the partition's first message."""
        if committed is not None and committed >= 0 and tp not in self._next:
            self._next[tp] = committed

    def stalled(self, highwater: Callable[[TopicPartition], int | None], now: float, idle_s: float = 10.0
                ) -> dict[TopicPartition, int]:
        """Partitions whose next offset the broker has (``highwater(tp)`` beyond it) but that have not moved
        for ``idle_s``: a message lost at the very end of what was fetched has no later one to reveal it.
        Returns the offset to read each one again from."""
        out = {}
        for tp, expected in self._next.items():
            high = highwater(tp)
            if high is not None and high > expected and now - self._moved.get(tp, now) >= idle_s:
                out[tp] = expected
                self._moved[tp] = now  # once per idle_s
        return out

    def admit(self, messages: Sequence[tuple[str, int, int]], now: float = 0.0,
              committed: Callable[[TopicPartition], int | None] = lambda tp: None) -> Admitted:
        """``messages``: (topic, partition, offset) in delivery order; ``now``: monotonic seconds;
        ``committed(tp)``: where a partition first seen since the last reset starts (:meth:`start`)."""
        out = Admitted([], {}, {})
        for i, (topic, partition, offset) in enumerate(messages):
            tp = (topic, partition)
            if tp not in self._next:
                self.start(tp, committed(tp))
            if tp in out.holes or tp in out.seek:  # behind a hole: comes again after the seek
                continue
            expected = self._next.get(tp)
            if expected is not None and offset > expected:
                if self._hole.get(tp) == expected:
                    out.seek[tp] = expected
                else:
                    out.holes[tp] = expected
                continue
            out.indices.append(i)
            if expected is None or offset == expected:
                self._next[tp] = offset + 1
                self._hole.pop(tp, None)
                self._moved[tp] = now
        return out

    def resolve(self, tp: TopicPartition, hole: int, first_present: int | None) -> int:
        """The broker's first offset at or after ``hole`` is ``first_present`` (None: it could not say).
        Returns the offset to read the partition again from."""
        if first_present is not None and first_present > hole:  # nothing lies there: go on after it
            self._next[tp] = first_present
            self._hole.pop(tp, None)
            return first_present
        if first_present is not None:
            self._hole[tp] = hole
        return hole
