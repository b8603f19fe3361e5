"""The sink agents on a running worker: PostgreSQL gets every prediction and signal exactly once,
even through a database outage mid-stream; Redis holds the latest state; Redis down stops nothing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.integration.test_candle_pipeline import all_out, collect, publish, real_candles
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


async def count(dsn: str, table: str) -> tuple[int, int]:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return -1, -1
    try:
        row = await conn.fetchrow(f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM {table}")
        return row["n"], row["d"]
    except asyncpg.UndefinedTableError:
        return 0, 0
    finally:
        await conn.close()



def test_postgres_outage_mid_stream_loses_nothing_and_duplicates_nothing(app_settings, worker_factory, pg_cluster,
                                                                          monkeypatch):
    monkeypatch.setenv("CANDLEFLOW_POSTGRES_DSN", pg_cluster.dsn)
    monkeypatch.setenv("CANDLEFLOW_SINK_BACKOFF_MAX_S", "0.5")
    settings = app_settings(sinks=("postgres",), outcome_loop=False)
    worker = worker_factory(settings)
    candles = real_candles(100)
    first, second = candles[:100], candles[100:]

    asyncio.run(publish(settings, first))
    wait_for(lambda: asyncio.run(count(pg_cluster.dsn, "predictions"))[0] == len(first))
    pg_cluster.stop()
    asyncio.run(publish(settings, second))
    asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    sink = wait_for(lambda: (s := worker.get("/stats")["sinks"]["postgres.predictions"])["retries"] and s)
    assert sink["backlog"] > 0 and sink["last_error"]
    pg_cluster.start()
    wait_for(lambda: worker.get("/stats")["sinks"]["postgres.predictions"]["backlog"] == 0)
    assert asyncio.run(count(pg_cluster.dsn, "predictions")) == (len(candles), len(candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    n_signals = len({s["id"] for s in got["signals"]})
    wait_for(lambda: asyncio.run(count(pg_cluster.dsn, "signals"))[0] == n_signals)
    assert asyncio.run(count(pg_cluster.dsn, "signals")) == (n_signals, n_signals)


def test_redis_keeps_the_latest_state_and_its_absence_stops_nothing(app_settings, worker_factory, redis_prefix, monkeypatch):
    from storage.redis_state import RedisState

    monkeypatch.setenv("CANDLEFLOW_REDIS_PREFIX", redis_prefix)
    settings = app_settings(sinks=("redis",), outcome_loop=False)
    worker = worker_factory(settings)
    candles = real_candles(60)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    last = {c.symbol: c for c in candles}

    async def latest(symbol):
        redis = RedisState(prefix=redis_prefix)
        try:
            return await redis.latest_features(symbol, "5m")
        finally:
            await redis.close()

    for symbol, candle in last.items():
        found = wait_for(lambda: (f := asyncio.run(latest(symbol))) and f["open_time"] == candle.open_time and f)
        assert found["model_version"] == worker.get("/health")["model_version"]

    # Redis unreachable: predictions and signals keep flowing, and the sink says so.
    monkeypatch.setenv("CANDLEFLOW_REDIS_URL", "redis://127.0.0.1:1/0")
    down = app_settings(sinks=("redis",), outcome_loop=False)
    worker_down = worker_factory(down)
    asyncio.run(publish(down, candles))
    again = asyncio.run(collect(down, all_out(len(candles), 0, down.signal_threshold)))
    assert len(again["predictions"]) == len(candles) and len(again["signals"]) == len(got["signals"])
    # The sink writes behind the stream, so its first failed attempt may come after the outputs.
    wait_for(lambda: (s := worker_down.get("/stats")["sinks"]["redis"])["healthy"] is False
             and s["errors"] + s["skipped"] > 0)


def test_the_candle_sink_stores_every_valid_candle_once_for_retraining(app_settings, worker_factory, pg_cluster,
                                                                       monkeypatch):
    import dataclasses
    import uuid

    from storage.postgres import PostgresStore
    from core.candle import Candle
    from training.retrain_window import load_window
    from training.retrain_worker import RetrainConfig

    monkeypatch.setenv("CANDLEFLOW_POSTGRES_DSN", pg_cluster.dsn)
    settings = app_settings(sinks=("candles",), outcome_loop=False)
    worker = worker_factory(settings)
    tag = uuid.uuid4().hex[:6]
    candles = [dataclasses.replace(c, symbol=f"{c.symbol}-{tag}") for c in real_candles(80)]
    c = candles[-1]
    broken = Candle(c.symbol, c.timeframe, c.open_time + 300_000, c.open, c.low * 0.5, c.low, c.close, c.volume)
    asyncio.run(publish(settings, candles + candles[:10] + [broken]))  # ten sent twice, one impossible

    async def stored() -> int:
        store = PostgresStore(pg_cluster.dsn)
        try:
            return (await store.fetch("SELECT count(*) AS n FROM candles WHERE symbol LIKE $1", f"%-{tag}"))[0]["n"]
        except asyncpg.UndefinedTableError:
            return 0
        finally:
            await store.close()

    wait_for(lambda: asyncio.run(stored()) == len(candles) and worker.get("/stats")["dead_letters"] >= 1,
             what="every valid candle in the table")

    async def read_back():
        store = PostgresStore(pg_cluster.dsn)
        try:
            return await load_window(RetrainConfig(use_topics=False, window=1000), store, {"symbols": {x.symbol for x in candles}})
        finally:
            await store.close()

    series = asyncio.run(read_back())
    def key(x):
        return x.symbol, x.open_time

    assert sorted((x for s in series for x in s), key=key) == sorted(candles, key=key)


def test_a_second_worker_joins_while_postgres_is_down_and_nothing_waits_for_it(app_settings, worker_factory, pg_cluster,
                                                                               monkeypatch):
    """The sinks have consumer groups of their own: a rebalance of the candle agent's group (a worker joining)
    never waits for the database, predictions flow throughout, and once PostgreSQL is back every row is
    stored once, whichever worker's sink wrote it."""
    from streams.broker import free_port

    monkeypatch.setenv("CANDLEFLOW_POSTGRES_DSN", pg_cluster.dsn)
    monkeypatch.setenv("CANDLEFLOW_SINK_BACKOFF_MAX_S", "0.5")
    first = app_settings(sinks=("postgres",), outcome_loop=False)
    second = first.replace(web={"port": free_port()}, data_dir=first.data_dir.with_name(first.data_dir.name + "-b"))
    a = worker_factory(first)
    candles = real_candles(120)
    part1, part2 = candles[:80], candles[80:]
    asyncio.run(publish(first, part1))
    wait_for(lambda: asyncio.run(count(pg_cluster.dsn, "predictions"))[0] == len(part1), what="first part stored")

    pg_cluster.stop()
    asyncio.run(publish(first, part2[:40]))  # buffered by a's sink, unstored, while b joins
    wait_for(lambda: a.get("/stats")["sinks"]["postgres.predictions"]["backlog"] > 0, what="a's sink behind")
    b = worker_factory(second)

    def shared():
        h = [w.get("/health") for w in (a, b)]
        return all(x["ready"] and x["assigned_partitions"] > 0 for x in h)

    wait_for(shared, what="the candle group rebalanced onto both workers while PostgreSQL is down")
    asyncio.run(publish(first, part2[40:]))
    got = asyncio.run(collect(first, all_out(len(candles), 0, first.signal_threshold)))
    assert len({p["id"] for p in got["predictions"]}) == len(candles), "predictions stopped while PostgreSQL was down"
    ready = b.get("/ready")  # a sink behind does not make a worker unready, and /ready says which
    assert ready["ready"] and set(ready["sinks_healthy"]) >= {"postgres.predictions", "postgres.signals"}

    pg_cluster.start()
    wait_for(lambda: asyncio.run(count(pg_cluster.dsn, "predictions"))[0] >= len(candles), what="every prediction stored")
    assert asyncio.run(count(pg_cluster.dsn, "predictions")) == (len(candles), len(candles))
    n_signals = len({s["id"] for s in got["signals"]})
    wait_for(lambda: asyncio.run(count(pg_cluster.dsn, "signals"))[0] == n_signals, what="every signal stored")
    assert asyncio.run(count(pg_cluster.dsn, "signals")) == (n_signals, n_signals)
    groups = {w.get("/stats")["sinks"]["postgres.predictions"]["consumer"]["group"] for w in (a, b)}
    assert groups == {f"{first.app_id}-sink-postgres"}


def test_rows_postgres_refuses_land_in_dead_letters_with_their_sqlstate(app_settings, worker_factory, pg_cluster,
                                                                        monkeypatch):
    """A foreign writer on an output topic: a NUL in a symbol (SQLSTATE 22021), a time past the year 9999
    (no timestamp holds it) and bytes that are no record at all each become one dead letter with the reason;
    the valid rows around them are stored, and the sink moves on (no endless retry)."""
    from aiokafka import AIOKafkaProducer

    from schemas import AvroCodec, store_from_url
    from kafka_io.consumer import read_topic

    monkeypatch.setenv("CANDLEFLOW_POSTGRES_DSN", pg_cluster.dsn)
    settings = app_settings(sinks=("postgres",), outcome_loop=False)
    worker = worker_factory(settings)
    candles = real_candles(60)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    assert got["signals"], "no signal to copy"
    template = got["signals"][0]
    n_signals = len({s["id"] for s in got["signals"]})
    wait_for(lambda: asyncio.run(count(pg_cluster.dsn, "signals"))[0] == n_signals, what="the valid signals stored")
    hostile = [{**template, "id": "nul-symbol", "symbol": "ETH\x00BTC"},
               {**template, "id": "year-31000", "open_time": 10**15}]
    valid = {**template, "id": "valid-after-the-hostile-ones", "open_time": template["open_time"] + 10**9}

    async def send() -> None:
        codec = AvroCodec("Signal", store_from_url(settings.schema_registry_url or None))
        producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap)
        await producer.start()
        try:
            for record in hostile:
                await producer.send_and_wait(settings.topic("signals"), codec.encode(record), key=b"ETH-BTC")
            await producer.send_and_wait(settings.topic("signals"), b"\x00\x01junk", key=b"ETH-BTC")
            await producer.send_and_wait(settings.topic("signals"), codec.encode(valid), key=b"ETH-BTC")
        finally:
            await producer.stop()

    asyncio.run(send())

    async def dead_letters(n: int) -> list[dict]:
        found = []
        async for _, record, _ in read_topic(settings, [settings.topic("dead-letters")], idle_timeout_s=2.0):
            found.append(record)
            if len(found) >= n:
                break
        return found

    wait_for(lambda: asyncio.run(count(pg_cluster.dsn, "signals"))[0] == n_signals + 1, what="the valid signal after them")
    letters = wait_for(lambda: len(d := asyncio.run(dead_letters(3))) >= 3 and d, what="three dead letters")
    assert all(d["source_topic"] == settings.topic("signals") for d in letters)
    by_reason = sorted(letters, key=lambda d: d["error_type"])
    assert [d["error_type"] for d in by_reason] == ["decode", "storage_refused", "validation"]
    assert "SQLSTATE 22021" in by_reason[1]["reason"] and b"nul-symbol" in by_reason[1]["payload"]
    assert "OverflowError" in by_reason[2]["reason"] and b"year-31000" in by_reason[2]["payload"]
    sink = worker.get("/stats")["sinks"]["postgres.signals"]
    assert sink["rows_rejected"] == 2 and sink["backlog"] == 0 and sink["healthy"]
