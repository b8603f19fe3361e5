"""The :class:`~core.errors.Retryable` policy for work that has changed nothing yet: back off and try again.

The candle agent decodes a batch before its step moves any state; a schema registry that is down (an
unknown schema id cannot be fetched) raises Retryable there. Nothing is acknowledged while it waits, so
a stop or a rebalance meanwhile loses nothing: the candles come again to whoever reads the partition.

>>> import asyncio
>>> answers, waited = iter([Retryable("registry unavailable"), Retryable("registry unavailable"), "decoded"]), []
>>> def decode():
...     answer = next(answers)
...     if isinstance(answer, Exception):
...         raise answer
...     return answer
>>> async def no_wait(seconds):
...     waited.append(seconds)
>>> asyncio.run(until_available(decode, "decoding", sleep=no_wait)), waited
('decoded', [0.5, 1.0])
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.errors import Retryable

__all__ = ["until_available"]

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_WAIT_S, MAX_WAIT_S = 0.5, 30.0


async def until_available(work: Callable[[], T], what: str, *,
                          sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """``work()``, called again after a growing wait (0.5 s doubling up to 30 s) while it raises Retryable.
    Only for work that has no effect when it fails. Any other exception goes to the caller."""
    wait = FIRST_WAIT_S
    while True:
        try:
            return work()
        except Retryable as exc:
            log.warning("%s: %s; trying again in %.1f s", what, exc, wait)
            await sleep(wait)
            wait = min(2 * wait, MAX_WAIT_S)
