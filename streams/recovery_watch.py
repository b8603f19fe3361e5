"""A watch on Faust's table recovery: it makes progress, or a remedy is tried, or the worker stops.

Seen in CI on 2026-12-06 (two full runs out of three, never in ~40 runs of the failover tests alone): a worker
that got partitions back in a second rebalance seconds after the first started reading its changelogs (the
memory store reads them from offset 0 at every rebalance) and never received one record. Faust logged "No
event received for active tp ... since recovery start" every five seconds for minutes while the broker's
high-water marks said the records were there; the worker served nothing, so every candle after the
rebalance waited, and the failover test found its predictions missing. Faust has no timeout on that wait.

:class:`RecoveryWatch` looks at the recovery's progress (how far it has read, summed over the partitions it
must read) every few seconds. After ``stall_s`` without progress it asks for the next remedy, cheapest first:
``reread`` (seek the unread partitions again through Faust, which also forgets the read offset that would drop
records before it, and resume them and the flow), then ``rejoin`` (ask the group for a new rebalance: Faust
starts the whole recovery again). A recovery that stalls again after the remedies are used up (progress in
between does not give them back: only a recovery that ends does) makes it ``give_up``: the worker stops
with a clear error, so that its supervisor starts a fresh process, which recovers from scratch.

>>> watch = RecoveryWatch(stall_s=10.0)
>>> watch.observe(0.0, progress=0), watch.observe(5.0, progress=0), watch.observe(10.0, progress=0)
('wait', 'wait', 'reread')
>>> watch.observe(12.0, progress=3)  # records arrive again
'wait'
>>> [watch.observe(t, progress=3) for t in (20.0, 22.0, 32.0)]  # stalled again: the next remedy, then none left
['wait', 'rejoin', 'give_up']
>>> watch.observe(43.0, progress=None), watch.tries  # no recovery runs (it ended): every remedy is available again
('wait', 0)
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Action", "REMEDIES", "RecoveryWatch"]

Action = Literal["wait", "reread", "rejoin", "give_up"]
REMEDIES: tuple[Action, ...] = ("reread", "rejoin")


class RecoveryWatch:
    """Decides, from the progress of a table recovery over time, when to try which remedy."""

    def __init__(self, stall_s: float = 20.0, remedies: tuple[Action, ...] = REMEDIES) -> None:
        if stall_s <= 0:
            raise ValueError(f"stall_s must be positive, got {stall_s}")
        self.stall_s, self.remedies = stall_s, remedies
        self._progress: int | None = None
        self._since = 0.0  # when the progress last moved (or the recovery started)
        self.tries = 0  # remedies tried in this recovery

    def observe(self, now: float, progress: int | None) -> Action:
        """``progress``: how far the recovery has read (any number that grows with every record read), or
        None when no recovery runs. Returns what to do now."""
        if progress is None:
            self._progress, self.tries = None, 0
            return "wait"
        if progress != self._progress:
            self._progress, self._since = progress, now
            return "wait"
        if now - self._since < self.stall_s:
            return "wait"
        self._since = now  # the next verdict comes a full stall_s later
        if self.tries >= len(self.remedies):
            return "give_up"
        self.tries += 1
        return self.remedies[self.tries - 1]
