"""A fault-tolerant sink: bounded buffer, batched writes, retries with backoff, safe offsets.

An agent puts each record with the partition and offset it came from; the sink writes batches
(``batch_size`` rows, or whatever arrived within ``flush_interval`` of the oldest) through an async
``write(records)`` callable such as :meth:`storage.postgres.PostgresStore.writer`. What happens on
failure follows ``core.errors``:

- :class:`Retryable`: the *same* batch is retried with exponential backoff (with jitter) until it is
  stored. Meanwhile the buffer fills and, once ``max_buffer`` records are waiting, ``put`` waits too:
  backpressure instead of unbounded memory.
- :class:`InvalidInput`: the batch is halved until the refused record is isolated; it goes to
  ``on_reject`` (the dead-letter hook) and the rest is stored.
- any other error: retried like ``Retryable``, but only ``max_attempts`` times; then it is taken for a
  poison row and handled like ``InvalidInput`` (halved, the row that keeps failing rejected), so one
  row the code cannot write never holds the sink in an endless retry.
- :class:`ConfigError`: nothing can succeed; the sink stops and ``put``/``flush`` raise it.

:meth:`safe_offsets` gives, per partition, the highest offset at or below which every record is
stored (or rejected): the agent commits only that (+1), so after a crash Kafka redelivers the rest,
and because writes are idempotent upserts by id the redelivered records land exactly once.

>>> import asyncio
>>> async def demo():
...     stored = []
...     async def write(records):
...         stored.extend(records)
...     async with BufferedSink(write, batch_size=2, flush_interval=0.01) as sink:
...         for offset in range(5):
...             await sink.put({"id": offset}, partition=0, offset=offset)
...         await sink.flush()
...         return len(stored), sink.safe_offsets(), sink.stats()["backlog"]
>>> asyncio.run(demo())
(5, {0: 4}, 0)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections import deque
from typing import Any, Awaitable, Callable, Hashable, Iterable, NamedTuple, Sequence

from core.latency import LatencyWindow
from storage.offsets import OffsetTracker
from core.errors import ConfigError, InvalidInput, Retryable

__all__ = ["BufferedSink"]

log = logging.getLogger(__name__)

Writer = Callable[[Sequence[Any]], Awaitable[Any]]
RejectHook = Callable[[Any, Hashable, "int | None", InvalidInput], Any]


class _Item(NamedTuple):
    record: Any
    partition: Hashable
    offset: int | None
    put_at: float


class BufferedSink:
    """Buffers records and stores them in batches through ``write``; see the module docs."""

    def __init__(self, write: Writer, *, name: str = "sink", batch_size: int = 500, flush_interval: float = 0.2,
                 max_buffer: int = 20_000, backoff_initial: float = 0.05, backoff_max: float = 5.0,
                 max_attempts: int = 5, on_reject: RejectHook | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if batch_size < 1 or max_buffer < batch_size:
            raise ConfigError(f"sink {name}: need 1 <= batch_size ({batch_size}) <= max_buffer ({max_buffer})")
        if max_attempts < 1:
            raise ConfigError(f"sink {name}: max_attempts must be >= 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self._clock = clock  # for the row latencies and the rows/s window (tests give a clock of their own)
        self.name, self._write, self._on_reject = name, write, on_reject
        self.batch_size, self.flush_interval, self.max_buffer = batch_size, flush_interval, max_buffer
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self._buffer: deque[_Item] = deque()
        self._in_flight = 0
        self._offsets = OffsetTracker()
        self._changed = asyncio.Condition()  # buffer grew / batch done / state changed
        self._flush_waiters = 0
        self._failed: ConfigError | None = None
        self._task: asyncio.Task | None = None
        # measurements
        self._batch_latency = LatencyWindow()
        self._row_latency = LatencyWindow()  # put -> stored, includes buffering and retries
        self._row_cost = LatencyWindow()  # batch write time / rows: what one row costs the database
        self._recent: deque[tuple[float, int]] = deque()  # (time, rows) of recent batches, for rows/s
        self.rows_written = self.batches = self.rows_rejected = self.retries = self.errors = 0
        self.last_error: str | None = None
        self.healthy = True

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> "BufferedSink":
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.name}-flusher")
        return self

    async def close(self, timeout: float | None = None) -> None:
        """Store everything buffered, then stop. On timeout the rest stays unstored (and uncommitted)."""
        try:
            if self._task is not None and not self._task.done():
                await asyncio.wait_for(self.flush(), timeout)
        finally:
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
                self._task = None

    async def __aenter__(self) -> "BufferedSink":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- input -----------------------------------------------------------------------------------
    async def put(self, record: Any, partition: Hashable = 0, offset: int | None = None) -> None:
        """Buffer one record; waits while ``max_buffer`` records are already waiting (backpressure)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._failed is not None or self.backlog < self.max_buffer)
            self._raise_if_failed()
            if offset is not None:
                self._offsets.track(partition, offset)
            self._buffer.append(_Item(record, partition, offset, self._clock()))
            if len(self._buffer) == 1 or len(self._buffer) >= self.batch_size:
                self._changed.notify_all()  # first record starts the flush clock; a full batch goes now
        if self._task is None:
            await self.start()

    async def put_many(self, items: Iterable[tuple[Any, Hashable, int | None]]) -> None:
        for record, partition, offset in items:
            await self.put(record, partition, offset)

    def skip(self, partition: Hashable, offset: int) -> None:
        """The agent read ``offset`` but has nothing to store: let the safe offset move past it."""
        self._offsets.skip(partition, offset)

    async def flush(self) -> None:
        """Return once everything put so far is stored (or rejected)."""
        self._flush_waiters += 1
        try:
            async with self._changed:
                self._changed.notify_all()
                await self._changed.wait_for(lambda: self._failed is not None or self.backlog == 0)
                self._raise_if_failed()
        finally:
            self._flush_waiters -= 1

    # -- output ----------------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Records put but not yet stored (buffered + in the batch being written)."""
        return len(self._buffer) + self._in_flight

    def safe_offsets(self) -> dict[Hashable, int]:
        """Per partition, the highest offset at or below which everything is stored: commit this + 1."""
        return self._offsets.safe()

    def _trim_recent(self, now: float) -> None:
        while self._recent and now - self._recent[0][0] > 10.0:
            self._recent.popleft()

    def stats(self) -> dict[str, Any]:
        now = self._clock()
        self._trim_recent(now)
        span = now - self._recent[0][0] if len(self._recent) > 1 else 0.0
        rate = sum(n for _, n in list(self._recent)[1:]) / span if span > 0 else 0.0
        return {
            "name": self.name, "healthy": self.healthy, "backlog": self.backlog, "buffered": len(self._buffer),
            "in_flight": self._in_flight, "max_buffer": self.max_buffer, "rows_written": self.rows_written,
            "batches": self.batches, "rows_rejected": self.rows_rejected, "retries": self.retries,
            "errors": self.errors, "last_error": self.last_error, "rows_per_s": round(rate, 1),
            "batch_latency": _ms(self._batch_latency), "row_latency": _ms(self._row_latency),
            "row_write_cost": _ms(self._row_cost), "safe_offsets": self.safe_offsets(),
            "failed": str(self._failed) if self._failed else None,
        }

    # -- the flusher -----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._buffer))
                # Wait for a full batch, a flush request, or the oldest record's flush deadline.
                deadline = self._buffer[0].put_at + self.flush_interval
                while len(self._buffer) < self.batch_size and not self._flush_waiters:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        break
                    try:
                        await asyncio.wait_for(self._changed.wait(), remaining)
                    except TimeoutError:
                        break
                n = min(self.batch_size, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(n)]
                self._in_flight = n
            try:
                await self._store(batch)
            except ConfigError as exc:
                self._failed, self.healthy, self.last_error = exc, False, str(exc)
                log.error("sink %s stopped: %s", self.name, exc)
            except Exception as exc:  # a bug here must stop the sink loudly, not leave put() waiting forever
                self._failed = ConfigError(f"sink {self.name} flusher crashed: {type(exc).__name__}: {exc}")
                self.healthy, self.last_error = False, str(self._failed)
                log.exception("sink %s flusher crashed", self.name)
            async with self._changed:
                self._in_flight = 0
                self._changed.notify_all()
            if self._failed is not None:
                return

    async def _store(self, batch: list[_Item]) -> None:
        """Write ``batch`` until it is stored; isolate and reject records the database refuses."""
        delay, unexplained = self.backoff_initial, 0
        while True:
            started = self._clock()
            try:
                try:
                    await self._write([item.record for item in batch])
                except (InvalidInput, ConfigError, Retryable):
                    raise
                except Exception as exc:
                    unexplained += 1
                    if unexplained < self.max_attempts:
                        raise
                    raise InvalidInput(f"write failed {unexplained} times: {type(exc).__name__}: {exc}") from exc
            except InvalidInput as exc:
                if len(batch) == 1:
                    await self._reject(batch[0], exc)
                    return
                half = len(batch) // 2
                await self._store(batch[:half])
                await self._store(batch[half:])
                return
            except ConfigError:
                raise
            except Exception as exc:  # Retryable, or unknown (for now): retrying loses nothing, giving up would
                self.errors += 1
                self.retries += 1
                self.healthy = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.errors == 1 or self.retries % 20 == 1:
                    log.warning("sink %s: write failed, retrying in %.2fs (backlog %d): %s",
                                self.name, delay, self.backlog, self.last_error)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter: workers do not retry in step
                delay = min(delay * 2, self.backoff_max)
                continue
            self._stored(batch, started, self._clock())
            return

    def _stored(self, batch: list[_Item], started: float, finished: float) -> None:
        took = finished - started
        self.healthy = True
        self.batches += 1
        self.rows_written += len(batch)
        self._batch_latency.add(took)
        self._row_cost.add(took / len(batch))
        self._recent.append((finished, len(batch)))
        self._trim_recent(finished)  # bounded whether or not anyone reads the stats
        for item in batch:
            self._row_latency.add(finished - item.put_at)
            if item.offset is not None:
                self._offsets.done(item.partition, item.offset)

    async def _reject(self, item: _Item, exc: InvalidInput) -> None:
        self.rows_rejected += 1
        log.warning("sink %s: rejected record at %s/%s: %s", self.name, item.partition, item.offset, exc)
        delay = self.backoff_initial
        while self._on_reject is not None:
            try:
                result = self._on_reject(item.record, item.partition, item.offset, exc)
                if inspect.isawaitable(result):
                    await result
                break
            except Exception as hook_exc:  # the dead-letter send failed: the offset must not move past it
                self.errors += 1
                self.last_error = f"on_reject: {type(hook_exc).__name__}: {hook_exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        if item.offset is not None:  # dead-lettered: the agent may commit past it
            self._offsets.done(item.partition, item.offset)

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise self._failed


def _ms(seconds: LatencyWindow) -> dict[str, float | None]:
    """p50 and p99 in milliseconds of a window of seconds (None while empty)."""
    return {f"p{q}_ms": None if (v := seconds.percentile(q)) is None else round(v * 1000, 3) for q in (50, 99)}
