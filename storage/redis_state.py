"""The latest view per (symbol, timeframe) in Redis, and a channel of signals, best effort.

Keys (``P`` = the configured prefix, default ``candleflow``):

- ``P:signal:<symbol>:<timeframe>`` - hash of the latest signal's fields, TTL ``ttl_s``;
- ``P:features:<symbol>:<timeframe>`` - hash ``open_time``, ``model_version``, ``values`` (and
  ``names`` when given), TTL ``ttl_s``;
- channel ``P:signals`` - every signal as one JSON object.

Hash values are JSON (``"0.42"``, ``"\\"UP\\""``, ``"null"`` is never written: absent fields are omitted),
so a reader gets back the types it put in.

Redis is a cache for light readers, never on the critical path: every operation has a short timeout,
a failure is counted and remembered (``healthy``, ``errors``, ``last_error``) and returns
``False``/``None`` instead of raising, and after a failure calls are skipped for ``cooldown_s`` so a
dead Redis costs nothing per signal.

>>> state = RedisState("redis://127.0.0.1:1/0", prefix="doc")  # port 1: nothing listens
>>> import asyncio
>>> asyncio.run(state.record_signal({"id": "s1", "symbol": "ETH-BTC", "timeframe": "5m"}))
False
>>> state.stats()["healthy"], state.stats()["errors"]
(False, 1)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any, AsyncIterator, Mapping, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["RedisState"]

log = logging.getLogger(__name__)


def _encode(record: Mapping[str, Any]) -> dict[str, str]:
    return {k: json.dumps(_clean(v)) for k, v in record.items() if v is not None}


def _clean(value: Any) -> Any:
    # JSON has no NaN; features are NaN until their window fills, and null says the same thing.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _decode(raw: Mapping[bytes | str, bytes | str]) -> dict[str, Any] | None:
    if not raw:
        return None
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


class RedisState:
    """Latest signal / features per (symbol, timeframe) and a signal channel; never raises on Redis errors."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "candleflow", ttl_s: int = 3600,
                 timeout_s: float = 0.25, cooldown_s: float = 1.0, client: aioredis.Redis | None = None) -> None:
        self.prefix, self.ttl_s, self.cooldown_s, self.timeout_s = prefix, ttl_s, cooldown_s, timeout_s
        # No client-side retries: a retry loop is exactly the slowness we are avoiding.
        self._redis = client or aioredis.Redis.from_url(url, socket_timeout=timeout_s,
                                                        socket_connect_timeout=timeout_s, retry_on_timeout=False,
                                                        retry=None, health_check_interval=0)
        self.healthy = True
        self.errors = 0
        self.skipped = 0
        self.last_error: str | None = None
        self._down_until = 0.0

    def signal_key(self, symbol: str, timeframe: str) -> str:
        return f"{self.prefix}:signal:{symbol}:{timeframe}"

    def features_key(self, symbol: str, timeframe: str) -> str:
        return f"{self.prefix}:features:{symbol}:{timeframe}"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:signals"

    async def record_signal(self, signal: Mapping[str, Any]) -> bool:
        """Store ``signal`` as the latest of its (symbol, timeframe) and publish it, in one round trip."""
        async def op() -> bool:
            key = self.signal_key(signal["symbol"], signal["timeframe"])
            message = json.dumps(_clean(dict(signal)))
            async with self._redis.pipeline(transaction=True) as pipe:
                # DEL first: a field absent from this signal must not survive from the previous one.
                pipe.delete(key).hset(key, mapping=_encode(signal)).expire(key, self.ttl_s).publish(self.channel, message)
                await pipe.execute()
            return True

        return await self._guard(op, False)

    async def record_features(self, symbol: str, timeframe: str, open_time: int, values: Sequence[float],
                              *, model_version: str | None = None, names: Sequence[str] | None = None) -> bool:
        async def op() -> bool:
            key = self.features_key(symbol, timeframe)
            fields = _encode({"open_time": open_time, "values": list(values), "model_version": model_version,
                              "names": list(names) if names is not None else None})
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key).hset(key, mapping=fields).expire(key, self.ttl_s)
                await pipe.execute()
            return True

        return await self._guard(op, False)

    async def latest_signal(self, symbol: str, timeframe: str) -> dict[str, Any] | None:
        return await self._guard(lambda: self._hgetall(self.signal_key(symbol, timeframe)), None)

    async def latest_features(self, symbol: str, timeframe: str) -> dict[str, Any] | None:
        return await self._guard(lambda: self._hgetall(self.features_key(symbol, timeframe)), None)

    async def subscribe_signals(self) -> AsyncIterator[dict[str, Any]]:
        """Signals published from now on, decoded. For light consumers; raises if Redis is down."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    yield json.loads(message["data"])
        finally:
            await pubsub.aclose()

    def stats(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "errors": self.errors, "skipped": self.skipped, "last_error": self.last_error}

    async def close(self) -> None:
        await self._redis.aclose()

    async def _hgetall(self, key: str) -> dict[str, Any] | None:
        return _decode(await self._redis.hgetall(key))

    async def _guard(self, op: Any, failed: Any) -> Any:
        if not self.healthy and time.monotonic() < self._down_until:
            self.skipped += 1
            return failed
        try:
            # The outer timeout also bounds DNS and pipeline waits that socket timeouts do not cover.
            result = await asyncio.wait_for(op(), self.timeout_s * 4)
        except (KeyError, TypeError, ValueError) as exc:
            # A record Redis cannot take (no symbol, not JSON-able): count it, Redis itself is fine.
            self.errors += 1
            self.last_error = f"bad record: {type(exc).__name__}: {exc}"
            return failed
        except (TimeoutError, RedisError, OSError) as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.healthy:
                log.warning("Redis unavailable, continuing without it: %s", self.last_error)
            self.healthy = False
            self._down_until = time.monotonic() + self.cooldown_s
            return failed
        if not self.healthy:
            log.info("Redis is back")
        self.healthy = True
        return result
