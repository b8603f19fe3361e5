"""BestEffort: calls to an optional dependency that must never hold up or stop the candle path.

The policy for enrichments (the pattern consensus, Weaviate or FAISS): each call is bounded by a
timeout; a failure or a timeout gives the caller's default, is logged once (not once per signal), and
the dependency is left alone for ``cooldown_s`` before it is tried again, so an outage costs one
timeout per cool-down, not one per candle.

>>> import asyncio
>>> now = [0.0]
>>> patterns = BestEffort("patterns", timeout_s=0.1, cooldown_s=30.0, clock=lambda: now[0])
>>> async def down():
...     raise ConnectionError("weaviate: connection refused")
>>> async def answer():
...     return 42
>>> asyncio.run(patterns.call(down, default=None)), patterns.failures, patterns.open
(None, 1, True)
>>> asyncio.run(patterns.call(answer, default=None)), patterns.skipped  # cooling down: not even tried
(None, 1)
>>> now[0] = 31.0
>>> asyncio.run(patterns.call(answer, default=None)), patterns.open
(42, False)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["BestEffort"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class BestEffort:
    """Timeouts and a cool-down after failures for one optional dependency (module docstring)."""

    def __init__(self, name: str, timeout_s: float = 0.5, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.timeout_s, self.cooldown_s, self._clock = name, timeout_s, cooldown_s, clock
        self.failures = 0  # calls that failed or timed out
        self.skipped = 0  # calls not made while cooling down
        self.last_error = ""
        self._retry_at: float | None = None  # None: closed, calls go through

    @property
    def open(self) -> bool:
        """True while the dependency is being left alone after a failure."""
        return self._retry_at is not None and self._clock() < self._retry_at

    async def call(self, make: Callable[[], Awaitable[T]], default: T) -> T:
        """``await make()`` within the timeout, or ``default`` (failed, timed out, or cooling down)."""
        if self.open:
            self.skipped += 1
            return default
        # Shielded: a call that times out runs on to its end instead of being cancelled half-way (an
        # in-process index cancelled between its vectors and their metadata would no longer agree).
        task = asyncio.ensure_future(make())
        task.add_done_callback(_retrieve)
        try:
            result = await asyncio.wait_for(asyncio.shield(task), self.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of an optional dependency is the same: do without
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
            self._retry_at = self._clock() + self.cooldown_s
            log.warning("%s unavailable (%s); going on without it, next try in %.0f s", self.name, self.last_error,
                        self.cooldown_s)
            return default
        if self._retry_at is not None:
            log.info("%s is back", self.name)
            self._retry_at = None
        return result

    def stats(self) -> dict[str, Any]:
        return {"failures": self.failures, "skipped": self.skipped, "cooling_down": self.open,
                "last_error": self.last_error or None}


def _retrieve(task: asyncio.Future) -> None:
    """Read a finished call's exception, so one that ended after its timeout is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()
