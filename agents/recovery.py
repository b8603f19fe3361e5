"""The recovery watch of a worker: a table recovery that stops receiving records gets its changelogs read again,
then a new rebalance, and after that the worker stops with a clear error (the policy: ``streams/recovery_watch.py``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from streams.client_internals import (pause_when_resumed, read_changelogs_again, recovery_diagnostics, recovery_pending,
                                     recovery_progress, rejoin_group)
from streams.recovery_watch import Action, RecoveryWatch

__all__ = ["RecoveryStalled", "attach_recovery_watch"]

log = logging.getLogger(__name__)

# Also the least time a remedy gets to show progress (a rebalance on a loaded broker takes seconds), whatever
# the stall limit: a shorter check would escalate before the previous remedy could work.
CHECK_EVERY_S = 5.0


class RecoveryStalled(RuntimeError):
    """Table recovery received nothing for too long, even after the remedies: the worker stops (its supervisor
    starts a fresh one, which recovers from scratch)."""


def attach_recovery_watch(app: Any, stall_s: float = 20.0, stall_first_recovery: int = 0) -> RecoveryWatch:
    """Every CHECK_EVERY_S, the recovery's progress goes to a :class:`RecoveryWatch` and its verdict is acted
    on. A task of its own, started at the first assignment: Faust starts its timers only after the first
    recovery, which must be watched too. ``stall_first_recovery`` (failure tests only): the first recovery
    with records to read gets none of them for that many resumes of its changelog partitions (they are
    paused again as soon as Faust resumes them): 1 is undone by reading again, 2 needs the rejoin."""
    watch = RecoveryWatch(stall_s)
    running: list[asyncio.Future] = []

    async def watch_recovery() -> None:
        while not app.should_stop:
            await asyncio.sleep(CHECK_EVERY_S)
            await _act(app, watch, watch.observe(time.monotonic(), recovery_progress(app)))

    @app.on_partitions_assigned.connect
    async def start_watching(app: Any, assigned: Any, **_: Any) -> None:
        if not running:
            running.append(asyncio.ensure_future(watch_recovery()))

    if stall_first_recovery:
        _stall_first_recovery(app, stall_first_recovery)
    return watch


async def _act(app: Any, watch: RecoveryWatch, action: Action) -> None:
    if action == "wait":
        return
    pending = recovery_pending(app)
    state = recovery_diagnostics(app, pending)
    if action == "reread":
        log.warning("table recovery received nothing for %.0f s; reading %d changelog partitions again:\n%s",
                    watch.stall_s, len(pending), state)
        await read_changelogs_again(app, pending)
    elif action == "rejoin":
        log.warning("table recovery received nothing for %.0f s after reading again; rejoining the group for a new "
                    "rebalance:\n%s", watch.stall_s, state)
        await rejoin_group(app)
    else:
        log.error("table recovery received nothing after %d remedies; stopping the worker:\n%s", watch.tries, state)
        await app.crash(RecoveryStalled(f"table recovery stalled with {len(pending)} changelog partitions unread"))


def _stall_first_recovery(app: Any, resumes: int) -> None:
    armed = False

    @app.on_partitions_assigned.connect
    async def stall_changelog_reads(app: Any, assigned: Any, **_: Any) -> None:
        nonlocal armed
        if not armed:
            armed = True
            log.warning("fault injection: the first table recovery gets none of its changelog records for %d resumes",
                        resumes)
            pause_when_resumed(app.consumer, set(app.tables.changelog_topics), resumes)
