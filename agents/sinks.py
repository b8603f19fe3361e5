"""Sinks: predictions, signals and outcomes into PostgreSQL; latest signals and features into Redis;
every valid candle into PostgreSQL's ``candles`` table (the candle sink, for retraining).

Enabled by ``CANDLEFLOW_SINKS`` (``postgres``, ``redis``, ``candles``, any of them); connection settings come from
the settings' ``storage`` section (:class:`core.settings_sections.StorageSettings`). A sink never slows or stalls
the candle agent: each store has its own consumer in a consumer group of its own
(:class:`agents.sink_consumer.SinkConsumer`), writing through a bounded :class:`storage.sink.BufferedSink`; a
database outage during a rebalance of the candle agent's group holds nothing up.

PostgreSQL is the system of record, so its consumer commits only what the sink reports stored. While the
database is down the sink buffers, retries with backoff and, when full, stops its consumer reading;
nothing past the stored offsets is committed, and the idempotent upserts absorb what is redelivered.
A row PostgreSQL refuses (SQLSTATE classes 22 and 23, or one the driver cannot encode, or one that keeps
failing for a reason outside the policy) goes to the dead-letter topic with the reason and the SQLSTATE,
as do undecodable messages on the output topics; none is dropped silently.
Redis holds only the latest state, so its consumer commits as it goes and counts what Redis refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from agents.sink_consumer import SinkConsumer
from schemas import AvroCodec, MultiCodec, schema_store, unbatch
from storage.postgres.store import PostgresStore
from storage.redis_state import RedisState
from storage.sink import BufferedSink
from streams.app import Pipeline
from core.candle import Candle
from core.settings import StorageSettings
from kafka_io.consumer import json_safe
from streams.dead_letters import dead_letter_record
from core.errors import InvalidInput
from core.candle_messages import decode_candle_message
from features import FEATURE_NAMES

__all__ = ["attach_sink_agents"]

log = logging.getLogger(__name__)

# topic -> (table, the records its messages carry: a single record or a batch of them)
_TABLES = {"predictions": ("Prediction", "PredictionBatch"), "signals": ("Signal",), "outcomes": ("Outcome", "OutcomeBatch")}

Decoder = Callable[[bytes], list[dict[str, Any]]]


def attach_sink_agents(pipeline: Pipeline, storage: StorageSettings | None = None) -> None:
    settings = pipeline.settings
    storage = storage or settings.storage
    schemas = schema_store(settings)
    if "postgres" in settings.sinks or "candles" in settings.sinks:
        topics: dict[str, tuple[str, Decoder, bool]] = {}  # topic -> (table, decode, dead-letter what it refuses)
        if "postgres" in settings.sinks:
            topics = {settings.topic(t): (t, _records(MultiCodec(names, schemas)), True) for t, names in _TABLES.items()}
        if "candles" in settings.sinks:  # the candle sink: what the retrain worker can read back
            candles = MultiCodec(["Candle", "CandleBatch"], schemas)
            # the candle agent dead-letters refused candles already: one dead letter per message
            topics.update({settings.candle_topic(tf): ("candles", _valid_candles(candles, tf, settings.max_message_bytes), False)
                           for tf in settings.timeframes})
        _attach_postgres(pipeline, storage, topics)
    if "redis" in settings.sinks:
        _attach_redis(pipeline, storage, MultiCodec(_TABLES["predictions"], schemas), AvroCodec("Signal", schemas))


def _records(codec: MultiCodec) -> Decoder:
    """Our own output topics: every record a message carries (a batch: each of them)."""
    return lambda value: [record for _, record in unbatch(*codec.decode(value))]


def _valid_candles(codec: MultiCodec, timeframe: str, max_bytes: int) -> Decoder:
    """A candle topic, written by anyone: the stream's own decoding and validation; what it refuses is
    not stored (the candle agent dead-letters it with the reason)."""
    def decode(value: bytes) -> list[dict[str, Any]]:
        items = decode_candle_message(codec, value, timeframe, max_bytes)
        if not any(isinstance(item, Candle) for item in items):
            raise InvalidInput(f"no valid candle: {items[0] if items else 'empty batch'}")
        return [item.to_record() for item in items if isinstance(item, Candle)]

    return decode


def _dead_letters(pipeline: Pipeline) -> Callable[..., Any]:
    """Send one dead letter and wait for its ack (a sink commits past a refused row only after that)."""
    topic, codec = pipeline.dead_letters.get_topic_name(), pipeline.codecs["DeadLetter"]

    async def send(error: InvalidInput, source: tuple[str, int], offset: int, key: bytes | None, payload: bytes) -> None:
        record = dead_letter_record(error, source[0], source[1], offset, key, payload)
        await pipeline.app.producer.send_and_wait(topic, key, codec.encode(record), partition=None, timestamp=None,
                                                  headers=None)

    return send


def _attach_postgres(pipeline: Pipeline, storage: StorageSettings, topics: dict[str, tuple[str, Decoder, bool]]) -> None:
    app, settings = pipeline.app, pipeline.settings
    store = PostgresStore(storage.postgres_dsn, max_size=storage.postgres_pool_max)
    dead_letter = _dead_letters(pipeline)

    async def refused(record: dict[str, Any], source: tuple[str, int], offset: int, error: InvalidInput) -> None:
        symbol = record.get("symbol")
        await dead_letter(error, source, offset, symbol.encode("utf-8", "replace") if isinstance(symbol, str) else None,
                          json.dumps(json_safe(record), default=str).encode())

    sinks = {table: BufferedSink(store.writer(table), name=f"postgres.{table}", batch_size=storage.sink_batch_size,
                                 flush_interval=storage.sink_flush_interval_s, max_buffer=storage.sink_max_buffer,
                                 backoff_max=storage.sink_backoff_max_s, on_reject=refused)
             for table, _, _ in topics.values()}

    def stored() -> dict[tuple[str, int], int]:  # each topic feeds one sink, so their safe offsets never clash
        return {tp: offset for sink in sinks.values() for tp, offset in sink.safe_offsets().items()}

    async def handle(m: Any) -> None:
        table, decode, dead_lettered = topics[m.topic]
        source = (m.topic, m.partition)
        try:
            records = decode(m.value)
        except InvalidInput as exc:  # a candle the stream refuses too; on our own topics, a foreign writer
            log.error("not storing %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)
            if dead_lettered:
                await dead_letter(exc, source, m.offset, m.key, m.value or b"")
            records = []
        if not records:
            sinks[table].skip(source, m.offset)
        for record in records:  # a batch: each record, at the message's offset
            await sinks[table].put(record, source, m.offset)

    consumer = SinkConsumer(settings, list(topics), f"{settings.app_id}-sink-postgres", handle, stored)
    for name, sink in sinks.items():
        pipeline.worker.sink_stats[f"postgres.{name}"] = _with_consumer(sink.stats, consumer)

    _run_in_worker(app, consumer, store.close)

    @app.on_before_shutdown.connect
    async def flush_postgres(app: Any, **_: Any) -> None:
        # Before the tasks are cancelled: the consumer's loop then commits what this flush stored, as it stops.
        await asyncio.gather(*(sink.close(timeout=5.0) for sink in sinks.values()), return_exceptions=True)


def _with_consumer(stats: Callable[[], dict[str, Any]], consumer: SinkConsumer) -> Callable[[], dict[str, Any]]:
    return lambda: {**stats(), "consumer": consumer.stats()}


def _attach_redis(pipeline: Pipeline, storage: StorageSettings, predictions: MultiCodec, signals: AvroCodec) -> None:
    app, settings = pipeline.app, pipeline.settings
    redis = RedisState(storage.redis_url, prefix=storage.redis_prefix, ttl_s=storage.redis_ttl_s,
                       timeout_s=storage.redis_timeout_s)
    signal_topic = settings.topic("signals")

    async def handle(m: Any) -> None:
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
        except InvalidInput as exc:  # the PostgreSQL sink, where it runs, dead-letters it; the cache skips it
            log.error("not caching %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)

    consumer = SinkConsumer(settings, [settings.topic("predictions"), signal_topic], f"{settings.app_id}-sink-redis",
                            handle)  # the latest state only: commit as it goes
    pipeline.worker.sink_stats["redis"] = _with_consumer(redis.stats, consumer)

    _run_in_worker(app, consumer, redis.close)


def _run_in_worker(app: Any, consumer: SinkConsumer, close: Callable[[], Any]) -> None:
    """The sink's consumer as a task of the worker (started and cancelled with it); then its store closes."""
    async def run_sink() -> None:
        try:
            await consumer.run()
        finally:
            await close()

    app.task(run_sink)
