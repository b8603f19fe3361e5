"""Sinks: predictions, signals and outcomes into PostgreSQL; latest signals and features into Redis;
every valid candle into PostgreSQL's ``candles`` table (the candle sink, for retraining).

Enabled by ``CANDLEFLOW_SINKS`` (``postgres``, ``redis``, ``candles``, any of them); connection settings come from
:class:`storage.config.StorageSettings`. A sink never slows the candle agent: it is its own agent on
the output topics, writing through a bounded :class:`storage.sink.BufferedSink`.

PostgreSQL is the system of record, so its agent takes acks into its own hands (``noack``): an event
is acked, and its offset becomes committable, only once the sink reports it stored. While the
database is down the sink buffers, retries with backoff and, when full, stops the agent reading;
nothing past the stored offsets is committed, and the idempotent upserts absorb what is redelivered.
Redis holds only the latest state, so its agent acks as it goes and counts what Redis refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from schemas import AvroCodec, MultiCodec, store_from_url, unbatch
from storage.config import StorageSettings
from storage.postgres.store import PostgresStore
from storage.redis_state import RedisState
from storage.sink import BufferedSink
from streams.app import Pipeline
from streams.candle import Candle
from streams.errors import InvalidInput
from streams.ingest import decode_candle_message
from streams.features import FEATURE_NAMES

__all__ = ["attach_sink_agents"]

log = logging.getLogger(__name__)

# topic -> (table, the records its messages carry: a single record or a batch of them)
_TABLES = {"predictions": ("Prediction", "PredictionBatch"), "signals": ("Signal",), "outcomes": ("Outcome", "OutcomeBatch")}


def attach_sink_agents(pipeline: Pipeline, storage: StorageSettings | None = None) -> None:
    settings = pipeline.settings
    storage = storage or StorageSettings.from_env()
    schemas = store_from_url(settings.schema_registry_url or None)
    if "postgres" in settings.sinks or "candles" in settings.sinks:
        topics = {}
        if "postgres" in settings.sinks:
            topics = {settings.topic(t): (t, _records(MultiCodec(names, schemas))) for t, names in _TABLES.items()}
        if "candles" in settings.sinks:  # the candle sink: what the retrain worker can read back
            candles = MultiCodec(["Candle", "CandleBatch"], schemas)
            topics.update({settings.candle_topic(tf): ("candles", _valid_candles(candles, tf, settings.max_message_bytes))
                           for tf in settings.timeframes})
        _attach_postgres(pipeline, storage, topics)
    if "redis" in settings.sinks:
        _attach_redis(pipeline, storage, MultiCodec(_TABLES["predictions"], schemas), AvroCodec("Signal", schemas))


def _records(codec: MultiCodec) -> Callable[[bytes], list[dict[str, Any]]]:
    """Our own output topics: every record a message carries (a batch: each of them)."""
    return lambda value: [record for _, record in unbatch(*codec.decode(value))]


def _valid_candles(codec: MultiCodec, timeframe: str, max_bytes: int) -> Callable[[bytes], list[dict[str, Any]]]:
    """A candle topic, written by anyone: the stream's own decoding and validation; what it refuses is
    not stored (the candle agent dead-letters it with the reason)."""
    def decode(value: bytes) -> list[dict[str, Any]]:
        items = decode_candle_message(codec, value, timeframe, max_bytes)
        if not any(isinstance(item, Candle) for item in items):
            raise InvalidInput(f"no valid candle: {items[0] if items else 'empty batch'}")
        return [item.to_record() for item in items if isinstance(item, Candle)]

    return decode


def _attach_postgres(pipeline: Pipeline, storage: StorageSettings,
                     topics: dict[str, tuple[str, Callable[[bytes], list[dict[str, Any]]]]]) -> None:
    app = pipeline.app
    store = PostgresStore(storage.postgres_dsn, max_size=storage.postgres_pool_max)
    sinks = {table: BufferedSink(store.writer(table), name=f"postgres.{table}", batch_size=storage.sink_batch_size,
                                 flush_interval=storage.sink_flush_interval_s, max_buffer=storage.sink_max_buffer,
                                 backoff_max=storage.sink_backoff_max_s)
             for table, _ in topics.values()}
    unacked: dict[tuple[str, int], deque] = defaultdict(deque)  # per source partition, in offset order
    holder: dict[str, Any] = {}
    for name, sink in sinks.items():
        pipeline.sink_stats[f"postgres.{name}"] = sink.stats

    async def ack_stored() -> None:
        stream = holder.get("stream")
        if stream is None:
            return
        for (topic, partition), events in unacked.items():
            safe = sinks[topics[topic][0]].safe_offsets().get((topic, partition), -1)
            while events and events[0].message.offset <= safe:
                await stream.ack(events.popleft())

    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="postgres-sink")
    async def to_postgres(stream: Any) -> None:
        holder["stream"] = stream = stream.noack()
        async for event in stream.events():
            m = event.message
            table, records = topics[m.topic]
            unacked[(m.topic, m.partition)].append(event)
            try:
                for record in records(m.value):  # a batch: each record, at the message's offset
                    await sinks[table].put(record, (m.topic, m.partition), m.offset)
            except InvalidInput as exc:  # a candle the stream refuses too; on our own topics, a foreign writer
                log.error("not storing %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)
                sinks[table].skip((m.topic, m.partition), m.offset)
            await ack_stored()

    @app.timer(0.25)
    async def ack_postgres_progress() -> None:  # acks also while no new event arrives
        await ack_stored()

    @app.on_before_shutdown.connect
    async def flush_postgres(app: Any, **_: Any) -> None:
        await asyncio.gather(*(sink.close(timeout=5.0) for sink in sinks.values()), return_exceptions=True)


def _attach_redis(pipeline: Pipeline, storage: StorageSettings, predictions: MultiCodec, signals: AvroCodec) -> None:
    app, settings = pipeline.app, pipeline.settings
    redis = RedisState(storage.redis_url, prefix=storage.redis_prefix, ttl_s=storage.redis_ttl_s,
                       timeout_s=storage.redis_timeout_s)
    pipeline.sink_stats["redis"] = redis.stats
    source = app.topic(settings.topic("predictions"), settings.topic("signals"), key_serializer="raw", value_serializer="raw")
    signal_topic = settings.topic("signals")

    @app.agent(source, name="redis-sink")
    async def to_redis(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            try:
                if m.topic == signal_topic:
                    await redis.record_signal(signals.decode(m.value))
                else:
                    latest: dict[tuple[str, str], dict[str, Any]] = {}  # a batch: only each series' newest matters
                    for _, p in unbatch(*predictions.decode(m.value)):
                        latest[(p["symbol"], p["timeframe"])] = p
                    for p in latest.values():
                        await redis.record_features(p["symbol"], p["timeframe"], p["open_time"], p["features"],
                                                    model_version=p["model_version"], names=FEATURE_NAMES)
            except InvalidInput as exc:
                log.error("not caching %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)
