"""Publishing candles: the Python API behind ``candleflow produce``.

>>> async def publish(candles):                      # doctest: +SKIP
...     async with CandleProducer(Settings.from_env()) as producer:
...         for candle in candles:
...             await producer.send(candle)
"""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Iterable, Iterator, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from schemas import MultiCodec, schema_store
from core.candle import Candle
from kafka_io.security import aiokafka_security
from core.settings import Settings

__all__ = ["CandleProducer", "QueuedProducer", "merge_by_time", "Pacer"]


class QueuedProducer:
    """An aiokafka producer as an async context: sends are queued, ``flush`` (and leaving) waits for their acks."""

    _producer: AIOKafkaProducer
    _pending: list[asyncio.Future]

    async def __aenter__(self):
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def flush(self) -> None:
        """Wait until every queued message is acknowledged by the broker."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


BATCH_CANDLES = 4096  # ~300 KB of Avro: a message of any step stays far below the 1 MiB limit


class CandleProducer(QueuedProducer):
    """Publishes candles as Avro (Confluent wire format), keyed by symbol, to ``candles.<timeframe>``.

    ``send`` publishes one Candle message; ``send_batch`` publishes CandleBatch messages, one per
    partition, so each symbol's candles keep their order on the partition that owns the symbol.
    """

    def __init__(self, settings: Settings, linger_ms: int = 5):
        self.settings = settings
        self.codec = MultiCodec(["Candle", "CandleBatch"], schema_store(settings))
        self._producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap, linger_ms=linger_ms, **aiokafka_security(settings),
                                          max_batch_size=256 * 1024, acks=1)
        self._partitioner = DefaultPartitioner()
        self._pending: list[asyncio.Future] = []

    async def send(self, candle: Candle) -> None:
        """Queue one candle (the pipeline validates it again on arrival)."""
        value = self.codec.encode("Candle", candle.to_record())
        await self._queue(self.settings.candle_topic(candle.timeframe), candle.symbol.encode(), value)

    async def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue arbitrary bytes (for tools and tests that need malformed input)."""
        await self._queue(topic, key, value)

    async def send_batch(self, candles: Sequence[Candle]) -> None:
        """Queue candles as CandleBatch messages grouped by (timeframe, partition of the symbol), at most
        ``BATCH_CANDLES`` a message (well under the 1 MiB message limit, whatever the step's width)."""
        groups: dict[tuple[str, int], list[Candle]] = {}
        for candle in candles:
            topic = self.settings.candle_topic(candle.timeframe)
            partition = self._partition(topic, candle.symbol.encode())
            groups.setdefault((topic, partition), []).append(candle)
        for (topic, partition), group in groups.items():
            for start in range(0, len(group), BATCH_CANDLES):
                chunk = group[start:start + BATCH_CANDLES]
                value = self.codec.encode("CandleBatch", {"candles": [c.to_record() for c in chunk]})
                await self._queue(topic, chunk[0].symbol.encode(), value, partition=partition)

    def _partition(self, topic: str, key: bytes) -> int:
        partitions = sorted(self._producer._metadata.partitions_for_topic(topic) or range(self.settings.partitions))
        return self._partitioner(key, partitions, partitions)

    async def _queue(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        self._pending.append(await self._producer.send(topic, value, key=key, partition=partition))
        if len(self._pending) >= 10_000:  # bound memory on long replays
            await self.flush()


def merge_by_time(series: Iterable[Sequence[Candle]]) -> Iterator[Candle]:
    """Interleave several symbols' candles by open time, as a live feed would deliver them.

    >>> a = [Candle("A", "1m", t, 1, 1, 1, 1, 0) for t in (0, 120000)]
    >>> b = [Candle("B", "1m", 60000, 1, 1, 1, 1, 0)]
    >>> [(c.symbol, c.open_time) for c in merge_by_time([a, b])]
    [('A', 0), ('B', 60000), ('A', 120000)]
    """
    return heapq.merge(*series, key=lambda c: (c.open_time, c.symbol))


class Pacer:
    """Paces publication: as fast as possible, ``rate`` candles per second, or ``speed`` times real time."""

    def __init__(self, rate: float | None = None, speed: float | None = None):
        if rate is not None and rate <= 0 or speed is not None and speed <= 0:
            raise ValueError("rate and speed must be positive")
        self.rate, self.speed = rate, speed
        self._start = time.monotonic()
        self._first_open_time: int | None = None
        self._sent = 0

    async def wait(self, candle: Candle) -> None:
        if self.rate:
            due = self._start + self._sent / self.rate
        elif self.speed:
            if self._first_open_time is None:
                self._first_open_time = candle.open_time
            due = self._start + (candle.open_time - self._first_open_time) / 1000 / self.speed
        else:
            due = 0.0
        self._sent += 1
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
