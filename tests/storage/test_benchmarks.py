"""The benchmarks still run (tiny sizes; the numbers in docs/storage.md come from the full runs)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


async def test_write_benchmark_runs_and_cleans_up(pg_dsn):
    import asyncpg

    from bench.storage_writes import measure

    results = await measure(pg_dsn, rows=600, batch=200)
    assert len(results) == 3 and all(r.get("insert_rows_per_s", r.get("rows_per_s", 0)) > 0 for r in results)
    conn = await asyncpg.connect(pg_dsn)
    try:
        left = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'candleflow_bench_%'")
        assert not left
    finally:
        await conn.close()


def test_pattern_market_vectors_are_real_windows_first():
    from bench.pattern_index import market_vectors

    vectors = market_vectors(200)
    assert vectors.shape == (200, 35)
