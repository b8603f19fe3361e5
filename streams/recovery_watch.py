"""A watch on Faust's table recovery: it makes progress, or the changelogs are read again, or the worker stops.

Seen in CI on 2026-12-06 (two runs of the failover test out of two, never in ~40 runs of it alone): a worker
that got partitions back in a second rebalance seconds after the first started reading its changelogs (the
memory store reads them from offset 0 at every rebalance) and never received one record. Faust logged "No
event received for active tp ... since recovery start" every five seconds for minutes while the broker's
high-water marks said the records were there; the worker served nothing, so every candle after the
rebalance waited, and the failover test found its predictions missing. Faust has no timeout on that wait.

:class:`RecoveryWatch` looks at the recovery's progress (how far it has read, summed over the partitions it
must read) every few seconds. Progress, or a recovery that ended, resets it. After ``stall_s`` without
progress it asks for the changelogs to be read again from where recovery stands (the agent seeks each
partition there through Faust, which also forgets the read offset that would drop records before it, and
resumes the flow); after ``max_rereads`` such reads without progress it gives up, and the worker stops
with a clear error so that its supervisor starts a fresh process, which recovers from scratch.

>>> watch = RecoveryWatch(stall_s=10.0, max_rereads=2)
>>> watch.observe(0.0, progress=0), watch.observe(5.0, progress=0), watch.observe(10.0, progress=0)
('wait', 'wait', 'reread')
>>> watch.observe(12.0, progress=3)  # records arrive again: the stall is over
'wait'
>>> [watch.observe(t, progress=3) for t in (22.0, 32.0, 42.0)]
['reread', 'reread', 'give_up']
>>> watch.observe(43.0, progress=None)  # not in recovery (it ended): nothing to watch
'wait'
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Action", "RecoveryWatch"]

Action = Literal["wait", "reread", "give_up"]


class RecoveryWatch:
    """Decides, from the progress of a table recovery over time, when to read its changelogs again."""

    def __init__(self, stall_s: float = 20.0, max_rereads: int = 3) -> None:
        if stall_s <= 0 or max_rereads < 0:
            raise ValueError(f"stall_s must be positive and max_rereads >= 0, got {stall_s}, {max_rereads}")
        self.stall_s, self.max_rereads = stall_s, max_rereads
        self._progress: int | None = None
        self._since = 0.0  # when the progress last moved (or the recovery started)
        self.rereads = 0  # reads again asked for in this stall

    def observe(self, now: float, progress: int | None) -> Action:
        """``progress``: how far the recovery has read (any number that grows with every record read), or
        None when no recovery runs. Returns what to do now."""
        if progress is None or progress != self._progress:
            self._progress, self._since, self.rereads = progress, now, 0
            return "wait"
        if now - self._since < self.stall_s:
            return "wait"
        self._since = now  # the next verdict comes a full stall_s later
        if self.rereads >= self.max_rereads:
            return "give_up"
        self.rereads += 1
        return "reread"
