"""Faust's Kafka transport with four changes: two about what a broker may do within the protocol,
two for agents whose events are acknowledged by a checkpoint (3, 4).

1. The consumer's fetch wait comes from our settings. faust-streaming hard-codes
   ``fetch_max_wait_ms=1500``; a broker may hold a fetch that long before answering (Tansu does:
   ~140 ms median at 500 ms and ~280 ms at 1500 ms, against ~7 ms at 20 ms), which puts every
   candle's latency in the hundreds of milliseconds.
2. Changelog high-water marks for table recovery are checked against a fetch response. Faust takes
   them from ListOffsets; Tansu answers ListOffsets too low after batched produces (10 records in one
   batch -> end offset 1), so recovery would stop early or refuse to start (ConsistencyError). A fetch
   response carries the partition's true high-water mark; we take the larger of the two.
3. Before Faust waits for every event to be acknowledged (a rebalance, a stop), the app's
   ``drain_hooks`` run, so state written behind is made durable and its events acknowledged.
4. In the app's ``gapless_topics`` (the candle topics, never compacted) a hole in the fetched offsets
   is not counted as done (Faust would commit past it): the candle agent reads the partition again
   from the hole, and only a hole that stays after a few reads is accepted (``accept_gap``: a
   transaction marker of a transactional producer). See ``streams/offset_guard.py``.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Mapping

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["CandleflowApp"]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts and builds its fetcher.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms
        return consumer

    async def _highwaters(self, partitions: list) -> Mapping[Any, int]:
        listed = await super()._highwaters(partitions)
        if self.consumer.in_transaction or not partitions:
            return listed
        auth = faust_aiokafka.credentials_to_aiokafka_auth(self.app.conf.broker_credentials, self.app.conf.ssl_context)
        fetched = await fetched_highwaters(self._ensure_consumer()._client._bootstrap_servers, partitions, listed, **auth)
        return {tp: max(v for v in (listed.get(tp), fetched.get(tp)) if v is not None) for tp in partitions}


async def fetched_highwaters(bootstrap: Any, partitions: list, start: Mapping[Any, int],
                             timeout_s: float = 15.0, **client_options: Any) -> dict[Any, int]:
    """High-water marks as fetch responses report them (partitions that never answer are left out)."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=50, max_partition_fetch_bytes=1024, **client_options)
    await probe.start()
    try:
        tps = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        probe.assign(tps)
        for tp, original in zip(tps, partitions):
            probe.seek(tp, max(0, (start.get(original) or 0) - 1))
        found: dict[Any, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(found) < len(tps) and time.monotonic() < deadline:
            await probe.getmany(timeout_ms=100, max_records=1)
            for tp, original in zip(tps, partitions):
                high = probe.highwater(tp)
                if high is not None:
                    found[original] = high
        return found
    finally:
        await probe.stop()


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        # Agents that acknowledge their events only once a checkpoint made them durable
        # (agents/checkpoint.py) are drained here, before a rebalance or a stop waits for the acks.
        # A batch already taken may still be in an agent: drain until nothing is left unacked.
        while not self.should_stop:
            for drain in self.app.drain_hooks:
                await drain()
            self._clean_unacked_messages()
            if not self._unacked_messages:
                break
            await self._wait_for_ack(timeout=0.05)
        await super().wait_empty()

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        # Faust takes a hole in the offsets it fetched for a compacted range and counts it as done. In a
        # topic that is never compacted (the candle topics) it is a message that was not delivered: it must
        # not be committed past; the agent reads the partition again from it (streams/offset_guard.py).
        if tp.topic in self.app.gapless_topics:
            return
        await super()._add_gap(tp, offset_from, offset_to)

    async def accept_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """Offsets ``offset_from..offset_to`` of ``tp`` hold no message (a transaction marker): done."""
        await super()._add_gap(tp, offset_from, offset_to)

    async def first_offset_at(self, tp: Any, offset: int, timeout_s: float = 10.0) -> int | None:
        """The offset of ``tp``'s first message at or after ``offset`` (the partition's end if only offsets
        without a message follow), asked of the broker with a consumer of its own; None if nothing follows
        ``offset`` yet or the broker does not answer in time."""
        app = self.app
        auth = faust_aiokafka.credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
        probe = AIOKafkaConsumer(bootstrap_servers=self._thread._ensure_consumer()._client._bootstrap_servers,
                                 group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50,
                                 max_partition_fetch_bytes=1 << 20, **auth)
        await probe.start()
        try:
            target = TopicPartition(tp.topic, tp.partition)
            probe.assign([target])
            probe.seek(target, offset)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                records = (await probe.getmany(target, timeout_ms=200, max_records=1)).get(target)
                if records:
                    return records[0].offset
                end = probe.highwater(target)
                if end is not None and end <= await probe.position(target):
                    # Fetched up to the end: offsets offset..end-1 hold no message (markers), or there are none.
                    return end if end > offset else None
            return None
        finally:
            await probe.stop()


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class CandleflowApp(faust.App):
    """A faust.App whose worker consumer waits at most ``fetch_max_wait_ms`` for a fetch."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 1500, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.drain_hooks: list[Callable[[], Awaitable[None]]] = []  # run whenever Faust waits for acks
        self.gapless_topics: set[str] = set()  # never compacted: a hole in their offsets is a lost message
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
