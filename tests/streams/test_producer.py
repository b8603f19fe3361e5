"""CandleProducer on the real broker: a step of any width goes out in messages under the size limit."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from core.candle_files import read_candle_file
from kafka_io.consumer import read_topic
from streams.producer import BATCH_CANDLES, CandleProducer
from core.settings import Settings
from core.topics import ensure_topics, topic_specs
from tests.conftest import CANDLES

pytestmark = pytest.mark.integration


def test_a_step_wider_than_one_message_is_split_and_nothing_is_lost(broker):
    settings = Settings(broker={"bootstrap": broker.bootstrap}, topic_prefix=f"p{uuid.uuid4().hex[:8]}", partitions=1, timeframes=("5m",))
    ensure_topics(settings.broker.bootstrap, topic_specs(settings))
    base = read_candle_file(sorted(CANDLES.glob("*_5m.csv.gz"))[0]).candles[3000]
    n = 2 * BATCH_CANDLES + 100  # 25,000 candles of one partition would be ~1.7 MB in one message
    step = [dataclasses.replace(base, symbol=f"{base.symbol}-{k:05d}") for k in range(n)]

    async def run() -> list:
        async with CandleProducer(settings) as producer:
            await producer.send_batch(step)
            await producer.flush()
        return [record async for _, record, _ in read_topic(settings, [settings.candle_topic("5m")], idle_timeout_s=2.0)]

    got = asyncio.run(run())
    assert sorted(r["symbol"] for r in got) == sorted(c.symbol for c in step)
