"""PostgreSQL (optionally TimescaleDB) through asyncpg: schema, idempotent batched writes, indexed reads."""

from storage.postgres.migrations import MIGRATIONS, migrate
from storage.postgres.store import PostgresStore
from storage.postgres.tables import TABLES

__all__ = ["MIGRATIONS", "TABLES", "PostgresStore", "migrate"]
