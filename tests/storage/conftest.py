"""Storage fixtures: a private database on the shared PostgreSQL, a throw-away PostgreSQL server,
and a unique Redis key prefix. Nothing here touches data it did not create."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.storage.pg_cluster import PgCluster, pg_bin

SHARED_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _dsn(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


@pytest.fixture
async def pg_dsn():
    """A fresh ``candleflow_test_<random>`` database on the shared server, dropped afterwards."""
    name = f"candleflow_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(SHARED_PG, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"shared PostgreSQL at 127.0.0.1:5432 unavailable: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _dsn(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def pg_cluster():
    """A throw-away PostgreSQL server (initdb on a temp dir, a free port), started; destroyed afterwards."""
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin)")
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def redis_prefix():
    return f"cftest:{uuid.uuid4().hex[:12]}"
