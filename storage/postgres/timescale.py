"""TimescaleDB when the server has it: hypertables on ``open_time`` and compression of old chunks.

Detection: ``pg_extension`` (already created) or ``pg_available_extensions`` (installed, then
``CREATE EXTENSION``; that fails unless ``timescaledb`` is in ``shared_preload_libraries``, and then
the plain tables stay). Every step is idempotent (``if_not_exists``), so it runs at each start and
also converts tables created before the extension appeared (``migrate_data``, which locks the table
while it copies: do that in a quiet moment).

Not runnable here: TimescaleDB is not packaged for this machine, so this path is written and reviewed
against the TimescaleDB 2.x API, and only the plain path is tested. Upserts keep working on compressed
chunks with TimescaleDB >= 2.11 (older versions refuse INSERT ... ON CONFLICT into compressed chunks;
keep ``compress_after`` longer than any replay window there).
"""

from __future__ import annotations

import logging

import asyncpg

__all__ = ["HYPERTABLES", "ensure_timescale", "timescale_status"]

log = logging.getLogger(__name__)

# table -> (segmentby, orderby). Segment by the series a query filters on; the id goes into orderby
# so every column of the unique key is in segmentby/orderby (TimescaleDB warns otherwise, and
# upserts into compressed chunks need it to find conflicts cheaply).
HYPERTABLES: dict[str, tuple[str, str]] = {
    "candles": ("symbol, timeframe", "open_time DESC"),
    "predictions": ("symbol, timeframe", "open_time DESC, id"),
    "signals": ("symbol, timeframe", "open_time DESC, id"),
    "outcomes": ("symbol, timeframe", "open_time DESC, id"),
}


async def timescale_status(conn: asyncpg.Connection) -> str:
    """``"installed"``, ``"available"`` (can be created) or ``"absent"``."""
    if await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"):
        return "installed"
    if await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"):
        return "available"
    return "absent"


async def ensure_timescale(conn: asyncpg.Connection, *, chunk_interval: str = "7 days",
                           compress_after: str = "30 days") -> bool:
    """Make the event tables hypertables with a compression policy; False when TimescaleDB is not there."""
    status = await timescale_status(conn)
    if status == "absent":
        return False
    if status == "available":
        try:
            async with conn.transaction():
                await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except asyncpg.PostgresError as exc:
            log.warning("timescaledb is installed but cannot be created (%s); keeping plain tables", exc)
            return False
    async with conn.transaction():
        for table, (segment_by, order_by) in HYPERTABLES.items():
            await conn.execute(
                "SELECT create_hypertable($1::regclass, 'open_time', chunk_time_interval => $2::interval, "
                "if_not_exists => TRUE, migrate_data => TRUE)", table, chunk_interval)
            enabled = await conn.fetchval(
                "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = $1",
                table)
            if not enabled:  # changing settings is refused once chunks are compressed: set them once
                await conn.execute(
                    f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = '{segment_by}', "
                    f"timescaledb.compress_orderby = '{order_by}')")
            await conn.execute("SELECT add_compression_policy($1::regclass, $2::interval, if_not_exists => TRUE)",
                               table, compress_after)
    log.info("TimescaleDB: %s are hypertables, compressed after %s", ", ".join(HYPERTABLES), compress_after)
    return True
