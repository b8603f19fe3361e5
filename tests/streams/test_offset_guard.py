"""OffsetGuard against a consumer that drops a message around a rebalance, delivers what it had fetched
before a seek, or reads a partition with an offset that holds no message (a transaction marker)."""

from __future__ import annotations

import random

import pytest

from streams.offset_guard import OffsetGuard


class Partition:
    """A partition's log (offsets ``log``) read the way Faust's fetcher may: ``drop`` offsets are skipped on
    the first pass, and after a seek the messages already fetched still come first."""

    def __init__(self, log: list[int], drop: set[int], stale: int, seed: int) -> None:
        self.log, self.drop, self.stale = log, set(drop), stale
        self.position, self.in_flight = 0, []
        self.rng = random.Random(seed)

    def seek(self, offset: int) -> None:
        self.in_flight = [o for o in self.log[self.position:self.position + self.stale]]  # fetched before the seek
        self.position = next(i for i, o in enumerate(self.log) if o >= offset)

    def take(self) -> list[int]:
        out, self.in_flight = self.in_flight, []
        n = self.rng.randint(1, 4)
        while len(out) < n and self.position < len(self.log):
            offset = self.log[self.position]
            self.position += 1
            if offset in self.drop:
                self.drop.discard(offset)  # lost once, there on a read from it
                continue
            out.append(offset)
        return out


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("markers", [set(), {13}, {13, 14}])
def test_every_message_is_processed_once_in_order(seed, markers):
    log = [o for o in range(40) if o not in markers]
    part = Partition(log, drop={5, 21, 22}, stale=seed % 4, seed=seed)
    guard, processed, gaps = OffsetGuard(), [], []
    for _ in range(500):
        batch = part.take()
        if not batch and part.position >= len(log):
            break
        admitted = guard.admit([("candles", 0, o) for o in batch])
        for i in admitted.indices:  # a message admitted again is one the step skips as already in its series
            if batch[i] not in processed:
                processed.append(batch[i])
        for tp, hole in admitted.holes.items():  # what the agent does: ask the broker, then seek
            start = guard.resolve(tp, hole, first_present=next(o for o in log if o >= hole))
            if start > hole:
                gaps.append((hole, start - 1))
            part.seek(start)
        for tp, offset in admitted.seek.items():
            part.seek(offset)
    assert processed == log
    assert gaps == ([(min(markers), max(markers))] if markers else [])


def test_a_redelivered_message_passes_and_moving_partitions_forgets_the_next_offset():
    guard = OffsetGuard()
    assert guard.admit([("c", 0, 10), ("c", 0, 11)]).indices == [0, 1]
    assert guard.admit([("c", 0, 9), ("c", 0, 12)]).indices == [0, 1]  # 9 again: the step skips it as covered
    guard.reset()
    assert guard.admit([("c", 0, 40)]).indices == [0]  # after a rebalance the first offset delivered starts it
