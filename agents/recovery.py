"""The recovery watch of a worker: a table recovery that stops receiving records is made to read its changelogs
again, and after a few tries the worker stops with a clear error (the policy: ``streams/recovery_watch.py``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from streams.client_internals import (pause_once_resumed, read_changelogs_again, recovery_diagnostics, recovery_pending,
                                     recovery_progress)
from streams.recovery_watch import RecoveryWatch

__all__ = ["RecoveryStalled", "attach_recovery_watch"]

log = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0


class RecoveryStalled(RuntimeError):
    """Table recovery received nothing for too long, even after reading its changelogs again: the worker stops
    (its supervisor starts a fresh one, which recovers from scratch)."""


def attach_recovery_watch(app: Any, stall_s: float = 20.0, stall_first_recovery: bool = False) -> RecoveryWatch:
    """Every CHECK_EVERY_S, the recovery's progress goes to a :class:`RecoveryWatch` and its verdict is acted
    on. A task of its own, started at the first assignment: Faust starts its timers only after the first
    recovery, which must be watched too. ``stall_first_recovery`` (failure tests only): the first recovery
    with records to read gets none of them (its changelog partitions are paused again as soon as Faust
    resumes them), so only the watch's reading again completes it."""
    watch = RecoveryWatch(stall_s)
    running: list[asyncio.Task] = []

    async def watch_recovery() -> None:
        while not app.should_stop:
            await asyncio.sleep(CHECK_EVERY_S)
            await _act(app, watch, watch.observe(time.monotonic(), recovery_progress(app)))

    @app.on_partitions_assigned.connect
    async def start_watching(app: Any, assigned: Any, **_: Any) -> None:
        if not running:
            running.append(asyncio.ensure_future(watch_recovery()))

    if stall_first_recovery:
        _drop_first_changelog_reads(app)
    return watch


async def _act(app: Any, watch: RecoveryWatch, action: str) -> None:
    if action == "wait":
        return
    pending = recovery_pending(app)
    state = recovery_diagnostics(app, pending)
    if action == "reread":
        log.warning("table recovery received nothing for %.0f s; reading %d changelog partitions again "
                    "(try %d of %d):\n%s", watch.stall_s, len(pending), watch.rereads, watch.max_rereads, state)
        await read_changelogs_again(app, pending)
        return
    log.error("table recovery received nothing after %d reads again; stopping the worker:\n%s", watch.rereads, state)
    await app.crash(RecoveryStalled(f"table recovery stalled with {len(pending)} changelog partitions unread"))


def _drop_first_changelog_reads(app: Any) -> None:
    @app.on_partitions_assigned.connect
    async def stall_changelog_reads(app: Any, assigned: Any, **_: Any) -> None:
        if not getattr(stall_changelog_reads, "armed", False):
            stall_changelog_reads.armed = True
            log.warning("fault injection: the first table recovery gets none of its changelog records")
            pause_once_resumed(app.consumer, set(app.tables.changelog_topics))
