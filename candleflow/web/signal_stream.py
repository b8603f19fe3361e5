"""One live feed of the signals topic per worker, shared by every ``/signals/stream`` client.

A consumer per connection let any number of clients open as many Kafka consumers (and fetch the
same records as many times). Here one consumer runs while at least one client listens, and fans each
record out to the clients' bounded queues. The number of clients is capped (``CANDLEFLOW_SSE_MAX_CLIENTS``;
the view answers 503 beyond it), and a client too slow to take its records (its queue full) is
disconnected rather than holding memory for it: it may reconnect.

>>> async def demo():
...     async def source():
...         for i in range(3):
...             await asyncio.sleep(0)
...             yield {"n": i}
...         await asyncio.Event().wait()  # a live topic: no end
...     feed = SignalFeed(source, max_clients=1)
...     client = feed.subscribe()
...     refused = feed.subscribe()  # over the cap
...     got = [await client.next() for _ in range(3)]
...     feed.unsubscribe(client)
...     await asyncio.sleep(0)
...     return got, refused, feed.stats()
>>> asyncio.run(demo())
([{'n': 0}, {'n': 1}, {'n': 2}], None, {'clients': 0, 'max_clients': 1, 'consumer_running': False, 'dropped_slow': 0})
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["SignalFeed", "FeedClient"]

log = logging.getLogger(__name__)


class FeedClient:
    """One listener: ``await next()`` gives its next record, or None once it was disconnected as too slow."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(queue_size)
        self.dropped = False

    async def next(self) -> dict[str, Any] | None:
        return None if self.dropped else await self.queue.get()

    def offer(self, record: dict[str, Any]) -> bool:
        """Queue ``record``; False (and disconnected) when the queue is full."""
        try:
            self.queue.put_nowait(record)
            return True
        except asyncio.QueueFull:
            self.close()
            return False

    def close(self) -> None:
        """Disconnect: free what it held, then wake it to see it."""
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class SignalFeed:
    """Runs ``source()`` (an async iterator of records) while clients listen; caps and fans out."""

    def __init__(self, source: Callable[[], AsyncIterator[dict[str, Any]]], max_clients: int = 64,
                 queue_size: int = 256) -> None:
        self._source, self.max_clients, self.queue_size = source, max_clients, queue_size
        self._clients: set[FeedClient] = set()
        self._task: asyncio.Task | None = None
        self.dropped_slow = 0

    def subscribe(self) -> FeedClient | None:
        """A new client, or None when ``max_clients`` already listen."""
        if len(self._clients) >= self.max_clients:
            return None
        client = FeedClient(self.queue_size)
        self._clients.add(client)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._pump(), name="signal-feed")
        return client

    def unsubscribe(self, client: FeedClient) -> None:
        self._clients.discard(client)
        if not self._clients and self._task is not None:
            self._task.cancel()  # no one listens: the consumer stops
            self._task = None

    def stats(self) -> dict[str, Any]:
        return {"clients": len(self._clients), "max_clients": self.max_clients,
                "consumer_running": self._task is not None and not self._task.done(), "dropped_slow": self.dropped_slow}

    async def _pump(self) -> None:
        try:
            async for record in self._source():
                for client in list(self._clients):
                    if not client.offer(record):
                        self._clients.discard(client)
                        self.dropped_slow += 1
                        log.warning("a /signals/stream client was too slow for the feed and is disconnected")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker went away: tell the clients by closing them; they may reconnect
            log.warning("signal feed stopped: %s: %s", type(exc).__name__, exc)
            for client in list(self._clients):
                client.close()
