"""The reads behind the web views, each served by an index from migration 3.

``recent_signals`` walks ``signals_symbol_recent`` (symbol, open_time DESC) newest first;
``accuracy_by_version`` reads only the partial index ``outcomes_accuracy`` (labels with a verdict).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Sequence

import asyncpg

from storage.postgres.tables import epoch_ms_to_dt

__all__ = ["ACCURACY_SQL", "RECENT_SIGNALS_SQL", "accuracy_by_version", "recent_signals"]

RECENT_SIGNALS_SQL = """
SELECT id, prediction_id, symbol, timeframe, (extract(epoch FROM open_time) * 1000)::bigint AS open_time,
       direction, confidence, entry_price, horizon, model_version, pattern_k, pattern_bullish_share,
       pattern_bearish_share, pattern_mean_outcome
FROM signals
WHERE symbol = $1 AND ($2::text IS NULL OR timeframe = $2) AND ($3::timestamptz IS NULL OR open_time < $3)
ORDER BY open_time DESC
LIMIT $4"""

# date_bin (PostgreSQL >= 14) buckets like TimescaleDB's time_bucket and works on plain tables too.
# Two texts rather than "$4 IS NULL OR ...": a prepared statement's generic plan could not use the
# (model_version, open_time) index behind such an OR.
ACCURACY_SQL = """
SELECT model_version, date_bin($1::interval, open_time, TIMESTAMPTZ '1970-01-01') AS bucket,
       count(*) AS n, avg(direction_correct::int)::float8 AS accuracy
FROM outcomes
WHERE source = 'LABEL' AND direction_correct IS NOT NULL AND open_time >= $2 AND open_time < $3
{versions}
GROUP BY 1, 2
ORDER BY 1, 2"""
_VERSIONS = "  AND model_version = ANY($4::text[])"


async def recent_signals(conn: asyncpg.Connection | asyncpg.Pool, symbol: str, *, timeframe: str | None = None,
                         before_ms: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The ``limit`` newest signals of ``symbol`` (before ``before_ms`` for paging), newest first."""
    rows = await conn.fetch(RECENT_SIGNALS_SQL, symbol, timeframe, epoch_ms_to_dt(before_ms), limit)
    return [dict(r) for r in rows]


async def accuracy_by_version(conn: asyncpg.Connection | asyncpg.Pool, *, bucket: timedelta, since_ms: int,
                              until_ms: int, versions: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Directional accuracy per model version per time bucket: ``{model_version, bucket, n, accuracy}``."""
    args = [bucket, epoch_ms_to_dt(since_ms), epoch_ms_to_dt(until_ms)]
    if versions is None:
        rows = await conn.fetch(ACCURACY_SQL.format(versions=""), *args)
    else:
        rows = await conn.fetch(ACCURACY_SQL.format(versions=_VERSIONS), *args, list(versions))
    return [dict(r) for r in rows]
