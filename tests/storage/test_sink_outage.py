"""The issue's "done when": a PostgreSQL outage mid-stream loses nothing and duplicates nothing.

A throw-away server (initdb, own port) is stopped while predictions stream into a BufferedSink and
started again; then the whole stream is replayed from offset 0, as Kafka would after a crash.
"""

from __future__ import annotations

import asyncio

import pytest

from storage.postgres import PostgresStore
from storage.sink import BufferedSink
from tests.storage.records import prediction

pytestmark = pytest.mark.integration

N = 3000


async def _count(dsn: str) -> tuple[int, int]:
    store = PostgresStore(dsn)
    try:
        row = (await store.fetch("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM predictions"))[0]
        return row["n"], row["ids"]
    finally:
        await store.close()


async def test_outage_mid_stream_then_replay_stores_everything_exactly_once(pg_cluster):
    store = await PostgresStore(pg_cluster.dsn, connect_timeout=1.0, command_timeout=5.0).start()
    sink = BufferedSink(store.writer("predictions"), name="predictions", batch_size=200, flush_interval=0.02,
                        max_buffer=1000, backoff_initial=0.05, backoff_max=0.4)
    await sink.start()
    records = [prediction(i) for i in range(N)]
    loop = asyncio.get_running_loop()
    try:
        for offset, record in enumerate(records[:1000]):
            await sink.put(record, partition=offset % 4, offset=offset // 4)
        await sink.flush()

        await loop.run_in_executor(None, pg_cluster.stop)  # the database goes away mid-stream
        for offset, record in enumerate(records[1000:1800], start=1000):
            await sink.put(record, partition=offset % 4, offset=offset // 4)
        await asyncio.sleep(0.5)
        stats = sink.stats()
        assert stats["backlog"] == 800 and not stats["healthy"] and stats["retries"] >= 1, stats
        assert sink.safe_offsets() == {p: 249 for p in range(4)}  # nothing past what was stored

        # a full buffer pushes back instead of growing: put() waits
        fill = asyncio.create_task(sink.put_many((r, o % 4, o // 4) for o, r in enumerate(records[1800:], start=1800)))
        await asyncio.sleep(0.3)
        assert not fill.done() and sink.backlog == sink.max_buffer

        await loop.run_in_executor(None, pg_cluster.start)  # it comes back
        await asyncio.wait_for(fill, 30)
        await asyncio.wait_for(sink.flush(), 30)
        assert sink.safe_offsets() == {p: N // 4 - 1 for p in range(4)}
        assert sink.stats()["healthy"] and sink.stats()["rows_written"] == N
        assert await _count(pg_cluster.dsn) == (N, N)

        # a crash before committing means Kafka redelivers from the last commit: replay it all
        for offset, record in enumerate(records):
            await sink.put(record, partition=offset % 4, offset=offset // 4)
        await sink.flush()
        assert await _count(pg_cluster.dsn) == (N, N)
    finally:
        await sink.close(timeout=10)
        await store.close()


async def test_sink_started_while_the_database_is_down(pg_cluster):
    pg_cluster.stop()
    store = PostgresStore(pg_cluster.dsn, connect_timeout=1.0)
    sink = BufferedSink(store.writer("predictions"), batch_size=50, flush_interval=0.01, backoff_initial=0.05,
                        backoff_max=0.2)
    try:
        for i in range(120):
            await sink.put(prediction(i), 0, i)
        await asyncio.sleep(0.3)
        assert sink.stats()["backlog"] == 120 and "Retryable" in sink.stats()["last_error"]
        await asyncio.get_running_loop().run_in_executor(None, pg_cluster.start)
        await asyncio.wait_for(sink.flush(), 20)  # the pool opens and migrations run on the first success
        assert sink.safe_offsets() == {0: 119}
        assert await _count(pg_cluster.dsn) == (120, 120)
    finally:
        await sink.close(timeout=10)
        await store.close()
