"""RedisState against the real Redis (a unique key prefix per test) and against a closed port."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
import redis.asyncio as aioredis

from storage.redis_state import RedisState
from streams.broker import free_port
from tests.storage.records import signal

pytestmark = pytest.mark.integration

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def state(redis_prefix):
    probe = aioredis.Redis.from_url(URL, socket_connect_timeout=0.5)
    try:
        await probe.ping()
    except Exception as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 unavailable: {exc}")
    s = RedisState(URL, prefix=redis_prefix, ttl_s=60)
    yield s
    keys = [k async for k in probe.scan_iter(match=f"{redis_prefix}:*")]
    if keys:
        await probe.delete(*keys)
    await probe.aclose()
    await s.close()


async def test_latest_signal_and_features_with_ttl(state):
    sig = {**signal(1), "pattern_k": 20, "pattern_mean_outcome": math.nan}
    assert await state.record_signal(sig) is True
    got = await state.latest_signal("ETH-BTC", "5m")
    assert got["id"] == sig["id"] and got["confidence"] == sig["confidence"] and got["pattern_k"] == 20
    assert got["pattern_mean_outcome"] is None and "candle_produced_at" not in got  # NaN -> null, None omitted
    newer = signal(2)
    await state.record_signal(newer)
    got = await state.latest_signal("ETH-BTC", "5m")
    assert got["id"] == newer["id"] and "pattern_k" not in got  # the previous signal's extra fields are gone

    assert await state.record_features("ETH-BTC", "5m", 123, [1.5, math.nan], model_version="v1", names=["a", "b"])
    assert await state.latest_features("ETH-BTC", "5m") == {"open_time": 123, "values": [1.5, None],
                                                           "model_version": "v1", "names": ["a", "b"]}
    assert await state.latest_signal("LTC-BTC", "5m") is None
    ttl = await state._redis.ttl(state.signal_key("ETH-BTC", "5m"))
    assert 0 < ttl <= 60
    assert state.stats() == {"healthy": True, "errors": 0, "skipped": 0, "last_error": None}
    assert await state.record_signal({"id": "no-symbol"}) is False  # a bad record is counted, not raised
    assert state.stats()["healthy"] and state.stats()["errors"] == 1 and "bad record" in state.stats()["last_error"]


async def test_signals_channel(state):
    received = []

    async def listen():
        async for message in state.subscribe_signals():
            received.append(message)
            if len(received) == 2:
                return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.2)  # let the subscription register before publishing
    await state.record_signal(signal(1))
    await state.record_signal(signal(2))
    await asyncio.wait_for(listener, 5)
    assert [m["id"] for m in received] == [signal(1)["id"], signal(2)["id"]]


async def test_redis_down_fails_fast_counts_and_never_raises(redis_prefix):
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", prefix=redis_prefix, timeout_s=0.2, cooldown_s=0.3)
    started = time.monotonic()
    results = [await state.record_signal(signal(i)) for i in range(50)]
    assert await state.latest_signal("ETH-BTC", "5m") is None
    assert await state.record_features("ETH-BTC", "5m", 1, [0.0]) is False
    elapsed = time.monotonic() - started
    assert results == [False] * 50 and elapsed < 1.0, elapsed  # a dead Redis costs the pipeline nothing
    stats = state.stats()
    assert not stats["healthy"] and stats["errors"] >= 1 and stats["errors"] + stats["skipped"] == 52
    assert "ConnectionError" in stats["last_error"] or "refused" in stats["last_error"].lower()
    await asyncio.sleep(0.35)  # after the cooldown it tries again (and counts the new failure)
    assert await state.record_signal(signal(0)) is False and state.stats()["errors"] == stats["errors"] + 1
    await state.close()
