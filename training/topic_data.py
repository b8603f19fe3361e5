"""Training data from a candle topic: every candle on it, per (symbol, timeframe), in time order.

The same decoding and validation as the stream (:func:`core.candle_messages.decode_candle_message`), so a
model can be trained on exactly what the pipeline saw; invalid messages are counted and left out.
"""

from __future__ import annotations

from typing import Any

from schemas import MultiCodec, schema_store
from core.candle import Candle
from kafka_io.client_internals import refresh_metadata
from core.errors import InvalidInput
from core.candle_messages import decode_candle_message
from core.settings import Settings

__all__ = ["series_from_topic"]


async def series_from_topic(settings: Settings, topic: str, idle_timeout_s: float = 2.0) -> tuple[list[list[Candle]], int]:
    """(one series per symbol and timeframe, number of invalid messages or candles left out)."""
    codec = MultiCodec(["Candle", "CandleBatch"], schema_store(settings))
    series: dict[tuple[str, str], dict[int, Candle]] = {}
    invalid = 0
    async for _, record, _ in read_topic_raw(settings, topic, idle_timeout_s):
        try:
            decoded = decode_candle_message(codec, record)
        except InvalidInput:
            invalid += 1
            continue
        for item in decoded:
            if isinstance(item, InvalidInput):
                invalid += 1
            else:  # a candle replayed onto the topic twice is one candle
                series.setdefault((item.symbol, item.timeframe), {})[item.open_time] = item
    return [[by_time[t] for t in sorted(by_time)] for _, by_time in sorted(series.items())], invalid


async def read_topic_raw(settings: Settings, topic: str, idle_timeout_s: float) -> Any:
    """The raw message values of ``topic`` from its beginning, until it has been idle ``idle_timeout_s``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from kafka_io.security import aiokafka_security

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=settings.broker.fetch_max_wait_ms, **aiokafka_security(settings))
    await consumer.start()
    try:
        await refresh_metadata(consumer)
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise InvalidInput(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_timeout_s * 1000))
            if not batch:
                return
            for messages in batch.values():
                for m in messages:
                    yield topic, m.value, m.timestamp
    finally:
        await consumer.stop()
