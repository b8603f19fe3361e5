"""bench.broker_bytes counts what a broker holds per topic, read back from the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from bench.broker_bytes import topic_bytes
from core.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def test_records_and_bytes_per_topic_of_the_chosen_prefixes_only(broker):
    run = uuid.uuid4().hex[:8]
    a, b, other = f"bytes-{run}-a", f"bytes-{run}-b", f"elsewhere-{run}"
    ensure_topics(broker.bootstrap, [TopicSpec(a, 2), TopicSpec(b, 1), TopicSpec(other, 1)])

    async def fill() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(a, b"v" * 100, key=b"k%d" % (i % 2))  # 2 + 100 bytes each
            await producer.send_and_wait(b, b"w" * 7)
            await producer.send_and_wait(other, b"x")
        finally:
            await producer.stop()

    asyncio.run(fill())
    counts = asyncio.run(topic_bytes(broker.bootstrap, (f"bytes-{run}",), idle_s=1.0))
    assert counts == {a: (10, 1020), b: (1, 7)}
