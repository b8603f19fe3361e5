"""Versioned schema migrations, applied in order at start-up, each exactly once.

``schema_migrations`` records each applied version with a checksum of its SQL: editing a migration
that already ran is refused (:class:`ConfigError`) instead of silently diverging between databases;
change the schema with a new migration. All of it runs in one transaction under an advisory lock, so
two workers starting together neither race nor leave half a schema behind.

After the numbered migrations, :func:`storage.postgres.timescale.ensure_timescale` turns the event
tables into hypertables with compression when the ``timescaledb`` extension is there.

>>> [m.version for m in MIGRATIONS] == sorted({m.version for m in MIGRATIONS})
True
"""

from __future__ import annotations

import hashlib
import logging
from typing import NamedTuple

import asyncpg

from core.errors import ConfigError

__all__ = ["MIGRATIONS", "Migration", "migrate"]

log = logging.getLogger(__name__)

_LOCK_ID = 0x43464C4F57  # "CFLOW": one advisory lock id for every Candleflow migrator


class Migration(NamedTuple):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "event tables", """
CREATE TABLE candles (
    symbol text NOT NULL, timeframe text NOT NULL, open_time timestamptz NOT NULL,
    open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL,
    volume float8 NOT NULL, quote_volume float8, trades bigint, taker_buy_base_volume float8,
    taker_buy_quote_volume float8, spread_bps float8,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, timeframe, open_time)
);
CREATE TABLE predictions (
    id text NOT NULL, symbol text NOT NULL, timeframe text NOT NULL, open_time timestamptz NOT NULL,
    close float8 NOT NULL, horizon int NOT NULL, prob_up float8 NOT NULL,
    direction text NOT NULL CHECK (direction IN ('UP', 'DOWN')), confidence float8 NOT NULL,
    ready boolean NOT NULL, model_version text NOT NULL, features float8[] NOT NULL,
    candle_produced_at timestamptz, stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, open_time)
);
CREATE TABLE signals (
    id text NOT NULL, prediction_id text NOT NULL, symbol text NOT NULL, timeframe text NOT NULL,
    open_time timestamptz NOT NULL, direction text NOT NULL CHECK (direction IN ('UP', 'DOWN')),
    confidence float8 NOT NULL, entry_price float8 NOT NULL, horizon int NOT NULL, model_version text NOT NULL,
    candle_produced_at timestamptz,
    pattern_k int, pattern_bullish_share float8, pattern_bearish_share float8,
    pattern_mean_outcome float8, pattern_mean_similarity float8,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, open_time)
);
CREATE TABLE outcomes (
    id text NOT NULL, source text NOT NULL CHECK (source IN ('LABEL', 'TRADE')), prediction_id text,
    signal_id text, symbol text NOT NULL, timeframe text NOT NULL, open_time timestamptz NOT NULL,
    horizon int NOT NULL, model_version text, realized_log_return float8, direction_correct boolean,
    entry_price float8, exit_price float8, pnl float8, status text,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, open_time)
);
"""),
    Migration(2, "model registry", """
CREATE TABLE model_versions (
    version text PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}', artifact_sha256 text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    status text NOT NULL CHECK (status IN ('active', 'candidate', 'retired')),
    traffic_share float8 NOT NULL CHECK (traffic_share BETWEEN 0 AND 1),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE deployments (
    id text PRIMARY KEY, model_version text NOT NULL REFERENCES model_versions (version),
    status text NOT NULL CHECK (status IN ('active', 'candidate', 'retired')),
    traffic_share float8 NOT NULL CHECK (traffic_share BETWEEN 0 AND 1),
    at timestamptz NOT NULL, note text
);
CREATE INDEX deployments_version_at ON deployments (model_version, at DESC);
"""),
    Migration(3, "time and query indexes", """
-- time order for range scans and retention (a hypertable would create these itself)
CREATE INDEX candles_open_time ON candles (open_time DESC);
CREATE INDEX predictions_open_time ON predictions (open_time DESC);
CREATE INDEX signals_open_time ON signals (open_time DESC);
CREATE INDEX outcomes_open_time ON outcomes (open_time DESC);
-- "recent signals for a symbol" (optionally of one timeframe): an index scan, newest first
CREATE INDEX signals_symbol_recent ON signals (symbol, open_time DESC);
CREATE INDEX predictions_symbol_recent ON predictions (symbol, timeframe, open_time DESC);
-- "accuracy per model version over time": labels only, index-only with the flag included
CREATE INDEX outcomes_accuracy ON outcomes (model_version, open_time) INCLUDE (direction_correct)
    WHERE source = 'LABEL' AND direction_correct IS NOT NULL;
CREATE INDEX outcomes_prediction ON outcomes (prediction_id);
"""),
    Migration(4, "registry: evaluations, artifacts, deployment actions", """
-- a version is first 'registered' (stored, evaluated, not served) before it is a candidate or active
ALTER TABLE model_versions DROP CONSTRAINT model_versions_status_check;
ALTER TABLE model_versions ADD CONSTRAINT model_versions_status_check
    CHECK (status IN ('registered', 'active', 'candidate', 'retired'));
ALTER TABLE deployments DROP CONSTRAINT deployments_status_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_status_check
    CHECK (status IN ('registered', 'active', 'candidate', 'retired'));
-- what happened (rollback history is replayed from these), the event sent, and whether it was delivered
ALTER TABLE deployments
    ADD COLUMN action text CHECK (action IN ('register', 'activate', 'candidate', 'rollback', 'retire', 'reject')),
    ADD COLUMN previous_version text,
    ADD COLUMN event jsonb,
    ADD COLUMN published_at timestamptz;
-- the database enforces the serving invariants, whatever client writes: one active, one candidate per name
CREATE UNIQUE INDEX model_versions_one_active ON model_versions (name) WHERE status = 'active';
CREATE UNIQUE INDEX model_versions_one_candidate ON model_versions (name) WHERE status = 'candidate';
CREATE TABLE model_artifacts (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'), path text NOT NULL,
    files jsonb NOT NULL, size_bytes bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE model_evaluations (
    id text PRIMARY KEY, model_version text NOT NULL REFERENCES model_versions (version),
    created_at timestamptz NOT NULL DEFAULT now(), kind text NOT NULL, summary jsonb NOT NULL, report jsonb NOT NULL
);
CREATE INDEX model_evaluations_version ON model_evaluations (model_version, created_at DESC);
"""),
)


async def migrate(conn: asyncpg.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations ``conn``'s database lacks; returns the versions applied now."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())""")
        done = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")}
        known = {m.version for m in migrations}
        if unknown := sorted(set(done) - known):
            raise ConfigError(f"database has schema versions {unknown} this code does not know: it is older "
                              f"than the database; deploy the newer code")
        for m in migrations:
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise ConfigError(f"migration {m.version} ({m.name}) changed after it was applied; "
                                      f"add a new migration instead")
                continue
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                               m.version, m.name, m.checksum)
            applied_now.append(m.version)
            log.info("applied migration %d: %s", m.version, m.name)
    return applied_now
