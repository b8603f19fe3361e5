"""Batched, idempotent upserts: one statement per batch, replays change nothing.

Two ways to send a batch, both measured by ``python -m bench.storage_writes`` (docs/storage.md):

- ``"copy"``: COPY the rows into a per-connection temp table, then one ``INSERT ... SELECT ... ON
  CONFLICT`` into the real table. One round trip for the data, binary format.
- ``"executemany"``: the ``INSERT ... ON CONFLICT`` statement prepared once and executed per row in a
  pipeline (asyncpg sends all the rows before waiting).

Measured here (20k-40k prediction rows with 41 features, batches of 500 and 2,000, docs/storage.md)
executemany inserted 9-23 % faster than COPY in all four runs and replays were a wash (2:2), so it is the
default; COPY stays selectable for a database across a slow network, where its single data round
trip should matter more than it does on loopback.

Rows with the same key inside one batch are reduced to the last one first: Postgres refuses an
``ON CONFLICT DO UPDATE`` that touches a row twice in one statement.

>>> print(upsert_sql(TABLES["deployments"], "deployments"))  # doctest: +NORMALIZE_WHITESPACE
INSERT INTO deployments (id, model_version, status, traffic_share, at, note)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET model_version = EXCLUDED.model_version,
status = EXCLUDED.status, traffic_share = EXCLUDED.traffic_share, at = EXCLUDED.at, note = EXCLUDED.note
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import asyncpg

from storage.postgres.tables import TABLES, Table  # noqa: F401  (TABLES: used by the doctest)
from core.errors import InvalidInput

__all__ = ["METHODS", "rows_for", "upsert_sql", "write_rows"]

METHODS = ("copy", "executemany")


def _conflict(table: Table) -> str:
    key = ", ".join(table.key)
    if table.on_conflict == "nothing":
        return f"ON CONFLICT ({key}) DO NOTHING"
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in table.columns if c not in table.key)
    return f"ON CONFLICT ({key}) DO UPDATE SET {sets}"


def upsert_sql(table: Table, source: str) -> str:
    """``INSERT`` from parameters (``source`` = the table) or from a staging table (any other name)."""
    cols = ", ".join(table.columns)
    if source == table.name:
        params = ", ".join(f"${i}" for i in range(1, len(table.columns) + 1))
        return f"INSERT INTO {table.name} ({cols}) VALUES ({params}) {_conflict(table)}"
    # ORDER BY the key: concurrent batches then take row locks in the same order (no deadlocks).
    return (f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {source} "
            f"ORDER BY {', '.join(table.key)} {_conflict(table)}")


def rows_for(table: Table, records: Iterable[Mapping[str, Any]]) -> list[tuple]:
    """Rows for ``records``, one per key (the last record of a key wins)."""
    by_key: dict[tuple, tuple] = {}
    for record in records:
        row = table.row(record)
        by_key[table.key_of(row)] = row
    return list(by_key.values())


async def write_rows(conn: asyncpg.Connection, table: Table, rows: list[tuple], method: str = "executemany") -> None:
    """Upsert ``rows`` (from :func:`rows_for`) in one transaction."""
    if not rows:
        return
    if method == "executemany":
        async with conn.transaction():
            await conn.executemany(upsert_sql(table, table.name), rows)
        return
    if method != "copy":
        raise InvalidInput(f"unknown write method {method!r}; expected one of {METHODS}")
    stage = f"_stage_{table.name}"
    async with conn.transaction():
        # ON COMMIT DELETE ROWS: the staging table lives as long as the connection, empty between batches.
        await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                           f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        await conn.copy_records_to_table(stage, records=rows, columns=list(table.columns))
        await conn.execute(upsert_sql(table, stage))
