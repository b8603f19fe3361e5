"""kafka_io/client_internals.py against the real broker: aiokafka's private parts still do what we use them for."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from kafka_io.client_internals import send_open_batches

pytestmark = pytest.mark.integration

LINGER_S = 30.0  # far longer than the test waits: only send_open_batches can deliver in time


async def test_open_batches_go_without_waiting_out_the_linger(broker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=int(LINGER_S * 1000))
    await producer.start()
    try:
        topic = f"send-now-{uuid.uuid4().hex[:8]}"
        first = await producer.send(topic, b"first")  # creates the topic; its metadata is known after it
        send_open_batches(producer)
        await asyncio.wait_for(first, timeout=LINGER_S / 3)
        lingering = await producer.send(topic, b"held", partition=0)
        done, _ = await asyncio.wait([lingering], timeout=1.0)
        assert not done  # held for the linger
        send_open_batches(producer)
        metadata = await asyncio.wait_for(lingering, timeout=LINGER_S / 3)
        later = await producer.send(topic, b"after", partition=0)  # a new batch lingers again, until told
        send_open_batches(producer)
        assert (await asyncio.wait_for(later, timeout=LINGER_S / 3)).offset > metadata.offset
    finally:
        await producer.stop()
