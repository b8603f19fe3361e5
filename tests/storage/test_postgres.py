"""The PostgreSQL store on the shared server, in a private database: schema, idempotency, queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from storage.postgres import MIGRATIONS, PostgresStore, migrate
from storage.postgres.migrations import Migration
from storage.postgres.timescale import timescale_status
from core.errors import ConfigError, InvalidInput, Retryable
from tests.storage.records import STEP, T0, outcome, prediction, signal

pytestmark = pytest.mark.integration


async def test_migrations_apply_once_and_record_versions(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await migrate(conn) == [m.version for m in MIGRATIONS]
        assert await migrate(conn) == []  # idempotent: a second start applies nothing
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"candles", "predictions", "signals", "outcomes", "model_versions", "deployments"} <= tables
        # no TimescaleDB here: the plain path, with its own time indexes
        assert await timescale_status(conn) == "absent"
        indexes = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        assert {"signals_symbol_recent", "outcomes_accuracy", "predictions_open_time"} <= indexes
    finally:
        await conn.close()


async def test_a_changed_migration_is_refused(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        await migrate(conn)
        edited = MIGRATIONS[:2] + (Migration(3, MIGRATIONS[2].name, MIGRATIONS[2].sql + "\n-- edited"),) + MIGRATIONS[3:]
        with pytest.raises(ConfigError, match="changed after it was applied"):
            await migrate(conn, edited)
        with pytest.raises(ConfigError, match="does not know"):
            await migrate(conn, MIGRATIONS[:2])
        extra = len(MIGRATIONS) + 1
        new = MIGRATIONS + (Migration(extra, "extra", "CREATE TABLE extra (x int)"),)
        assert await migrate(conn, new) == [extra]
    finally:
        await conn.close()


@pytest.mark.parametrize("method", ["copy", "executemany"])
async def test_replays_and_in_batch_duplicates_create_no_duplicate_rows(pg_dsn, method):
    store = await PostgresStore(pg_dsn, method=method).start()
    try:
        preds = [prediction(i) for i in range(300)]
        assert await store.write("predictions", preds) == 300
        assert await store.write("predictions", preds[100:] + preds[:50]) == 250  # a replay, overlapping
        assert await store.write("predictions", preds[:10] + preds[:10]) == 10  # duplicates inside one batch
        rows = await store.fetch("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM predictions")
        assert rows[0]["n"] == rows[0]["ids"] == 300
        # values round-trip, NaN features included
        row = (await store.fetch("SELECT * FROM predictions WHERE id = $1", preds[7]["id"]))[0]
        assert row["open_time"].timestamp() * 1000 == preds[7]["open_time"]
        assert row["features"][1] == preds[7]["features"][1] and row["features"][0] != row["features"][0]  # NaN

        # outcomes DO UPDATE: a corrected record replaces the stored one, still one row
        await store.write("outcomes", [outcome(1, correct=True)])
        await store.write("outcomes", [outcome(1, correct=False)])
        got = await store.fetch("SELECT direction_correct FROM outcomes")
        assert [r["direction_correct"] for r in got] == [False]
    finally:
        await store.close()


async def test_registry_tables_and_refused_rows(pg_dsn):
    store = await PostgresStore(pg_dsn).start()
    try:
        version = {"version": "lgbm-h1-abc", "name": "lgbm-direction", "created_at": T0, "metadata": {"horizon": 1},
                   "artifact_sha256": "a" * 64, "status": "candidate", "traffic_share": 0.1}
        await store.write("model_versions", [version])
        await store.write("model_versions", [{**version, "status": "active", "traffic_share": 1.0}])
        await store.write("deployments", [{"id": "d1", "model_version": "lgbm-h1-abc", "status": "active",
                                           "traffic_share": 1.0, "at": T0 + 1000, "note": "promoted"}])
        rows = await store.fetch("SELECT status, traffic_share, metadata FROM model_versions")
        assert [(r["status"], r["traffic_share"], r["metadata"]) for r in rows] == [("active", 1.0, '{"horizon": 1}')]
        with pytest.raises(InvalidInput):  # check constraint: the database refuses the row, not the connection
            await store.write("model_versions", [{**version, "status": "deleted"}])
        with pytest.raises(InvalidInput, match="lacks"):  # refused before reaching the database
            await store.write("signals", [{"id": "x"}])
        with pytest.raises(InvalidInput, match="SQLSTATE 22021") as refused:  # a NUL byte: no text column takes it
            await store.write("signals", [{**signal(0, "ETH-BTC"), "symbol": "ETH\x00BTC"}])
        assert refused.value.kind == "storage_refused"
        with pytest.raises(InvalidInput, match="open_time cannot be stored: OverflowError"):  # past the year 9999
            await store.write("signals", [{**signal(0, "ETH-BTC"), "open_time": 10**15}])
    finally:
        await store.close()


async def test_recent_signals_and_accuracy_queries_use_their_indexes(pg_dsn):
    store = await PostgresStore(pg_dsn).start()
    try:
        await store.write("signals", [signal(i, s) for s in ("ETH-BTC", "LTC-BTC") for i in range(200)])
        # v1 right 3 times in 4, v2 every other time; one hour = 12 five-minute candles per bucket
        await store.write("outcomes", [outcome(i, "v1", correct=i % 4 != 0) for i in range(48)]
                          + [outcome(i, "v2", correct=i % 2 == 0) for i in range(48)])

        recent = await store.recent_signals("LTC-BTC", limit=5)
        assert [r["open_time"] for r in recent] == [T0 + i * STEP for i in range(199, 194, -1)]
        assert {r["symbol"] for r in recent} == {"LTC-BTC"}
        page = await store.recent_signals("LTC-BTC", limit=5, before_ms=recent[-1]["open_time"], timeframe="5m")
        assert page[0]["open_time"] == recent[-1]["open_time"] - STEP

        acc = await store.accuracy_by_version(bucket=timedelta(hours=1), since_ms=T0 - 3_600_000, until_ms=T0 + 10**9)
        by_version = {}
        for row in acc:
            by_version.setdefault(row["model_version"], []).append(row)
        assert sum(r["n"] for r in by_version["v1"]) == 48
        assert sum(r["n"] * r["accuracy"] for r in by_version["v1"]) == 36
        assert sum(r["n"] * r["accuracy"] for r in by_version["v2"]) == 24
        only_v2 = await store.accuracy_by_version(bucket=timedelta(hours=1), since_ms=T0, until_ms=T0 + 10**9,
                                                  versions=["v2"])
        assert {r["model_version"] for r in only_v2} == {"v2"}

        # The plans: an index, not a scan of the table (seqscan off so tiny tables do not mislead the planner).
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("ANALYZE; SET enable_seqscan = off")
            from storage.postgres.queries import ACCURACY_SQL, RECENT_SIGNALS_SQL

            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + RECENT_SIGNALS_SQL.replace("$1", "'ETH-BTC'")
                                                               .replace("$2", "NULL").replace("$3", "NULL").replace("$4", "5")))
            assert "signals_symbol_recent" in plan, plan
            from storage.postgres.queries import _VERSIONS

            # the generic plan (what a prepared statement ends up with): parameters stay unknown
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            stmt = await conn.prepare("EXPLAIN " + ACCURACY_SQL.format(versions=_VERSIONS))
            plan = "\n".join(r[0] for r in await stmt.fetch(timedelta(hours=1), datetime(2018, 1, 1, tzinfo=UTC),
                                                                datetime(2019, 1, 1, tzinfo=UTC), ["v1"]))
            assert "outcomes_accuracy" in plan, plan
        finally:
            await conn.close()
    finally:
        await store.close()


async def test_unreachable_database_is_retryable():
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout=0.5)
    with pytest.raises(Retryable):
        await store.write("signals", [signal(0)])
