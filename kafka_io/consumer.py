"""Reading Candleflow's topics without a consumer group: ``candleflow tail``, the demo, the web views, and
the offsets at a time (replay windows, the promotion worker's rewind).

Signal consumers that only need to watch (dashboards, tools, tests) read every partition from a
chosen position and decode each message by its schema id.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any, AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from core.errors import ConfigError, DecodeError
from core.settings import Settings
from kafka_io.client_internals import refresh_metadata
from kafka_io.security import aiokafka_security
from schemas import SCHEMA_NAMES, MultiCodec, schema_store, unbatch

__all__ = ["first_record", "offsets_at_time", "read_topic", "json_safe"]


async def offsets_at_time(consumer: AIOKafkaConsumer, tps: list[TopicPartition], ms: int) -> dict[TopicPartition, int | None]:
    """Per partition, the first offset whose message time is ``ms`` or later; None where none is (a time
    past the partition's last message). Kafka answers "none" with offset -1 (aiokafka: None), Tansu with
    an offset and timestamp -1: both read as None here."""
    found = await consumer.offsets_for_times({tp: max(ms, 0) for tp in tps})
    return {tp: (found[tp].offset if found.get(tp) is not None and found[tp].timestamp >= 0 else None) for tp in tps}


def json_safe(value: Any) -> Any:
    """Records as JSON can carry them: NaN/inf as null, bytes as hex.

    >>> json_safe({"x": float("nan"), "k": b"\\x01", "v": [1.5]})
    {'x': None, 'k': '01', 'v': [1.5]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _json_or(value: bytes | None, error: Exception) -> Any:
    if value and value[:1] == b"{":
        try:
            return json.loads(value)
        except ValueError:
            pass
    return error


async def read_topic(settings: Settings, topics: list[str], from_beginning: bool = True,
                     idle_timeout_s: float | None = None) -> AsyncIterator[tuple[str, Any, float]]:
    """Yield (topic, decoded record or DecodeError, receive time) from all partitions of ``topics``;
    a batch message (``PredictionBatch``, ``OutcomeBatch``, ``CandleBatch``) yields each of its records.

    ``from_beginning=False`` yields only messages written from now on. Stops after ``idle_timeout_s``
    seconds without a message (None: never).
    """
    since_ms = None if from_beginning else int(time.time() * 1000)
    codec = MultiCodec(list(SCHEMA_NAMES), schema_store(settings))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap, enable_auto_commit=False, group_id=None,
                                fetch_max_wait_ms=settings.broker.fetch_max_wait_ms, **aiokafka_security(settings))
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            ids = consumer.partitions_for_topic(topic)
            if not ids:  # metadata of a topic the client has not asked about yet
                await refresh_metadata(consumer)
                ids = consumer.partitions_for_topic(topic)
            if not ids:
                raise ConfigError(f"topic {topic!r} does not exist on {settings.broker.bootstrap}")
            partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=int((idle_timeout_s or 1.0) * 1000))
            if not batch and idle_timeout_s is not None:
                return
            now = time.time()
            for tp, messages in batch.items():
                for m in messages:
                    if since_ms is not None and m.timestamp < since_ms:
                        continue  # seek_to_end can land early on brokers with wrong ListOffsets (Tansu)
                    try:
                        records = [r for _, r in unbatch(*codec.decode(m.value))]  # a batch: its records one by one
                    except DecodeError as exc:
                        records = [_json_or(m.value, exc)]  # control topics (retrain-requests, model-events) are JSON
                    for record in records:
                        yield tp.topic, record, now
    finally:
        await consumer.stop()


async def first_record(settings: Settings, topic: str, timeout_s: float) -> Any:
    """The first record of ``topic`` (a full name), decoded as :func:`read_topic` does; None after ``timeout_s``."""
    async def read() -> Any:
        async for _, record, _ in read_topic(settings, [topic]):
            return record
        return None

    try:
        return await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError:
        return None
