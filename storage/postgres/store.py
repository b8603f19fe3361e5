"""One PostgreSQL database as Candleflow's system of record: pool, migrations, writes, reads.

The pool is opened lazily and re-opened after failures, so a store created while the database is
down starts working when it comes back; every failure surfaces as a ``core.errors`` branch
(:mod:`storage.postgres.errors`), which is what :class:`storage.sink.BufferedSink` acts on.

>>> store = PostgresStore("postgresql://postgres@127.0.0.1:1/none")  # nothing is contacted yet
>>> store.writer("signals").__name__
'write_signals'
>>> store.writer("trades")
Traceback (most recent call last):
...
core.errors.ConfigError: no table 'trades'; known: candles, predictions, signals, outcomes, model_versions, deployments
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, Awaitable, Callable, Mapping, Sequence

import asyncpg

from storage.postgres import queries
from storage.postgres.errors import classify
from storage.postgres.migrations import migrate
from storage.postgres.tables import TABLES
from storage.postgres.timescale import ensure_timescale
from storage.postgres.writer import METHODS, rows_for, write_rows
from core.errors import ConfigError

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)


class PostgresStore:
    """asyncpg pool + schema + idempotent batched writes. ``method``: ``"copy"`` or ``"executemany"``."""

    def __init__(self, dsn: str, *, max_size: int = 4, connect_timeout: float = 2.0,
                 command_timeout: float = 30.0, method: str = "executemany", use_timescale: bool = True) -> None:
        if method not in METHODS:
            raise ConfigError(f"write method must be one of {METHODS}, got {method!r}")
        self.dsn, self.method, self.use_timescale = dsn, method, use_timescale
        self._pool_kwargs = dict(min_size=1, max_size=max_size, timeout=connect_timeout,
                                 command_timeout=command_timeout)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self.timescale = False

    async def start(self) -> "PostgresStore":
        """Open the pool and bring the schema up to date. Raises ``Retryable`` while the database is down."""
        await self._ensure_pool()
        return self

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                try:
                    pool = await asyncpg.create_pool(self.dsn, **self._pool_kwargs)
                except Exception as exc:
                    raise classify(exc) from exc
                try:
                    async with pool.acquire() as conn:
                        await migrate(conn)
                        self.timescale = self.use_timescale and await ensure_timescale(conn)
                except Exception as exc:
                    await pool.close()
                    raise classify(exc) from exc
                self._pool = pool
        return self._pool

    async def write(self, table: str, records: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ``records`` into ``table`` in one transaction; returns the rows sent (after de-duplication)."""
        spec = self._table(table)
        rows = rows_for(spec, records)  # InvalidInput for a malformed record, before touching the database
        pool = await self._ensure_pool()
        try:
            async with pool.acquire() as conn:
                await write_rows(conn, spec, rows, self.method)
        except Exception as exc:
            raise classify(exc) from exc
        return len(rows)

    def writer(self, table: str) -> Callable[[Sequence[Mapping[str, Any]]], Awaitable[int]]:
        """``write`` bound to one table: the callable a :class:`~storage.sink.BufferedSink` takes."""
        self._table(table)

        async def write(records: Sequence[Mapping[str, Any]]) -> int:
            return await self.write(table, records)

        write.__name__ = f"write_{table}"
        return write

    async def recent_signals(self, symbol: str, **kwargs: Any) -> list[dict[str, Any]]:
        return await self._read(queries.recent_signals, symbol, **kwargs)

    async def accuracy_by_version(self, *, bucket: timedelta, since_ms: int, until_ms: int,
                                  versions: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return await self._read(queries.accuracy_by_version, bucket=bucket, since_ms=since_ms,
                                until_ms=until_ms, versions=versions)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Any read, with errors classified (tests and ad-hoc views)."""
        return await self._read(lambda pool, *a: pool.fetch(sql, *a), *args)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _read(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        pool = await self._ensure_pool()
        try:
            return await fn(pool, *args, **kwargs)
        except Exception as exc:
            raise classify(exc) from exc

    @staticmethod
    def _table(name: str):
        if name not in TABLES:
            raise ConfigError(f"no table {name!r}; known: {', '.join(TABLES)}")
        return TABLES[name]
