"""Which input offsets are safely stored: the highest *contiguous* one per partition.

Batches can finish out of order (a retried batch behind a later one), so "the highest stored offset"
is not safe to commit: everything at or below the committed offset must be stored. Offsets are
tracked in the order they were put; gaps in the numbering (messages the agent had nothing to store
for) do not block, since only offsets handed to the tracker are waited for.

>>> t = OffsetTracker()
>>> for o in (10, 11, 12, 13):
...     t.track(0, o)
>>> t.done(0, 12); t.done(0, 10)
>>> t.safe()        # 11 is not stored yet, so 12 cannot be committed
{0: 10}
>>> t.done(0, 11); t.safe()
{0: 12}
>>> t.skip(0, 14)   # the agent had nothing to store for 14, but it must wait for 13
>>> t.done(0, 13); t.safe(), t.pending()
({0: 14}, 0)
>>> t.track(0, 15); t.track(0, 15); t.done(0, 15); t.safe()   # two records of one batch message
{0: 14}
>>> t.done(0, 15); t.safe()
{0: 15}
"""

from __future__ import annotations

from collections import deque
from typing import Hashable

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Per partition: offsets in put order, which of them are stored, and the safe high-water mark."""

    def __init__(self) -> None:
        self._queue: dict[Hashable, deque[int]] = {}
        self._stored: dict[Hashable, dict[int, int]] = {}  # offset -> records of it stored, not yet passed
        self._safe: dict[Hashable, int] = {}

    def track(self, partition: Hashable, offset: int) -> None:
        """``offset`` of ``partition`` is in flight (call in the order the messages were read)."""
        self._queue.setdefault(partition, deque()).append(offset)
        self._stored.setdefault(partition, {})

    def done(self, partition: Hashable, offset: int) -> None:
        """``offset`` is durably stored (or deliberately dropped, e.g. dead-lettered); an offset tracked
        n times (the records of one batch message) is safe once it is done n times."""
        self._stored[partition][offset] = self._stored[partition].get(offset, 0) + 1
        self._advance(partition)

    def skip(self, partition: Hashable, offset: int) -> None:
        """Nothing to store for ``offset``: safe as soon as everything before it is."""
        self.track(partition, offset)
        self.done(partition, offset)

    def safe(self) -> dict[Hashable, int]:
        """Highest offset per partition at or below which everything is stored (Kafka commits this + 1)."""
        return dict(self._safe)

    def pending(self) -> int:
        return sum(len(q) for q in self._queue.values())

    def _advance(self, partition: Hashable) -> None:
        queue, stored = self._queue[partition], self._stored[partition]
        while queue and stored.get(queue[0], 0) > 0:
            offset = queue.popleft()
            stored[offset] -= 1
            if not stored[offset]:
                del stored[offset]
            if not queue or queue[0] != offset:  # a batch message puts several records at one offset
                self._safe[partition] = offset
