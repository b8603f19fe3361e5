"""A sink's own Kafka consumer, in a consumer group of its own.

The sinks used to be agents of the worker's Faust app, in the candle agent's consumer group. Faust
waits for every unacked event of the group's agents when partitions are revoked, and the PostgreSQL
sink acks only what is stored: a database outage during a rebalance stalled the candle agent too.
Here each sink reads its topics with a plain consumer in the group ``<app id>-sink-<name>``, so a
rebalance of the candle agent's group never waits for a database, and a sink's rebalance never waits
for one either: on revoke it commits what is stored and lets the partitions go; whatever it had
buffered is still written (the upserts are idempotent), and the new owner re-reads from the commit.

``handle(record)`` is awaited per message, in offset order per partition; it may wait (a full sink
buffer: backpressure). What is committed is ``committable()``: per (topic, partition) the highest
offset whose records are all stored (the sink's safe offsets), or, for a sink that acks as it goes
(``committable=None``), the last offset handled. A partition given back to this consumer after a
rebalance is re-read from its commit; offsets it already handled are not handed to ``handle`` twice.

A new group starts at the topics' beginning: upgrading from the Faust agents stores everything once
more (without duplicates, by the upserts' keys).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from kafka_io.security import aiokafka_security
from core.settings import Settings

__all__ = ["SinkConsumer"]

log = logging.getLogger(__name__)

Handle = Callable[[Any], Awaitable[None]]
Committable = Callable[[], dict[tuple[str, int], int]]


class SinkConsumer:
    """Feeds ``handle`` from ``topics`` in the group ``group_id`` and commits what ``committable`` allows."""

    def __init__(self, settings: Settings, topics: list[str], group_id: str, handle: Handle,
                 committable: Committable | None = None, *, commit_interval_s: float = 1.0) -> None:
        self.settings, self.topics, self.group_id = settings, list(topics), group_id
        self._handle, self._committable, self.commit_interval_s = handle, committable, commit_interval_s
        self._handled: dict[tuple[str, int], int] = {}  # the last offset handed to handle, per partition
        self._committed: dict[tuple[str, int], int] = {}  # the last offset committed (the commit is this + 1)
        self._consumer: AIOKafkaConsumer | None = None
        self.assigned: set[tuple[str, int]] = set()
        self.messages = self.rebalances = self.commit_failures = 0
        self.last_error: str | None = None

    def stats(self) -> dict[str, Any]:
        return {"group": self.group_id, "assigned_partitions": len(self.assigned), "messages": self.messages,
                "rebalances": self.rebalances, "committed": {f"{t}[{p}]": o + 1 for (t, p), o in self._committed.items()},
                "commit_failures": self.commit_failures, "last_error": self.last_error}

    def safe(self) -> dict[tuple[str, int], int]:
        return dict(self._handled) if self._committable is None else self._committable()

    async def run(self) -> None:
        """Consume until cancelled; a lost broker is waited out (the consumer is made anew)."""
        delay = 0.5
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:  # the broker went away (or is not up yet): come back when it is
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("sink group %s: %s; retrying in %.1fs", self.group_id, self.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _consume(self) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.broker.bootstrap, group_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=max(s.broker.fetch_max_wait_ms, 100),
            session_timeout_ms=6_000, heartbeat_interval_ms=1_500, rebalance_timeout_ms=10_000,
            # a full sink buffer (the database down) keeps handle() waiting: that is not a dead consumer
            max_poll_interval_ms=24 * 3_600_000, **aiokafka_security(s))
        consumer.subscribe(self.topics, listener=_Listener(self))
        await consumer.start()
        self._consumer = consumer
        last_commit = time.monotonic()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for tp, messages in batch.items():
                    key = (tp.topic, tp.partition)
                    for m in messages:
                        if m.offset <= self._handled.get(key, -1):
                            continue  # given back after a rebalance: already handed to the sink
                        await self._handle(m)
                        self._handled[key] = m.offset
                        self.messages += 1
                if time.monotonic() - last_commit >= self.commit_interval_s:
                    await self.commit()
                    last_commit = time.monotonic()
        finally:
            try:
                await self.commit()  # what is stored by now (a stop flushed the sink first)
            finally:
                self._consumer = None
                await consumer.stop()

    async def commit(self, only: set[tuple[str, int]] | None = None) -> None:
        """Commit the safe offsets of the partitions this consumer holds (or of ``only``)."""
        consumer = self._consumer
        if consumer is None:
            return
        held = self.assigned if only is None else only & self.assigned
        offsets = {TopicPartition(t, p): o + 1 for (t, p), o in self.safe().items()
                   if (t, p) in held and o > self._committed.get((t, p), -1)}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # e.g. a rebalance under way: the next commit carries the same offsets
            self.commit_failures += 1
            self.last_error = f"commit: {type(exc).__name__}: {exc}"
            log.info("sink group %s: commit deferred: %s", self.group_id, self.last_error)
            return
        for tp, offset in offsets.items():
            self._committed[(tp.topic, tp.partition)] = offset - 1


class _Listener(ConsumerRebalanceListener):
    """Commits what is stored before partitions go; never waits for the sink itself."""

    def __init__(self, owner: SinkConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        gone = {(tp.topic, tp.partition) for tp in revoked}
        await self.owner.commit(gone)
        self.owner.assigned -= gone

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner.rebalances += 1
        self.owner.assigned = {(tp.topic, tp.partition) for tp in assigned}
        for key in self.owner.assigned:
            self.owner._committed.pop(key, None)  # another owner may have committed further meanwhile
