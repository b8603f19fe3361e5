"""The model registry: versions in PostgreSQL, files in the artifact store, every change on ``model-events``.

States of a version (per model name, enforced by unique indexes of migration 4): ``registered`` (stored,
not served), at most one ``active``, at most one ``candidate`` (with a traffic share), ``retired``.
Each change runs in one transaction under a per-name advisory lock, is recorded as a ``deployments``
row (action, note, the event), and is then published to ``model-events`` and awaited; the row's
``published_at`` says it was delivered, so :meth:`ModelRegistry.publish_pending` can resend what a
broker outage left behind.

The event format, the publisher and reading the topic back: :mod:`training.model_events`.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from storage.postgres import PostgresStore
from storage.postgres.errors import classify
from training.artifacts import ArtifactStore, manifest
from training.model_events import EventPublisher, model_event, previous_active

__all__ = ["ModelRegistry"]

log = logging.getLogger(__name__)

_LOCK_PREFIX = "candleflow-registry:"


def _row(record) -> dict[str, Any]:
    out = dict(record)
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat().replace("+00:00", "Z")
        elif key in ("metadata", "event", "summary", "report", "files") and isinstance(value, str):
            out[key] = json.loads(value)
    return out


class ModelRegistry:
    """Register, evaluate, promote, roll back. ``publisher`` None: changes are recorded, not published
    (``published_at`` stays null until :meth:`publish_pending` runs with a publisher)."""

    def __init__(self, store: PostgresStore, artifacts: ArtifactStore, publisher: EventPublisher | None = None) -> None:
        self.store, self.artifacts, self.publisher = store, artifacts, publisher

    async def _pool(self):
        # PostgresStore has no public transaction API yet; the registry needs one for its state changes.
        return await self.store._ensure_pool()

    # ---- reads ------------------------------------------------------------------------------------
    async def list(self, name: str | None = None) -> list[dict[str, Any]]:
        rows = await self.store.fetch(
            "SELECT version, name, status, traffic_share, created_at, artifact_sha256 FROM model_versions "
            "WHERE $1::text IS NULL OR name = $1 ORDER BY created_at DESC, version", name)
        return [_row(r) for r in rows]

    async def show(self, version: str) -> dict[str, Any]:
        rows = await self.store.fetch("SELECT * FROM model_versions WHERE version = $1", version)
        if not rows:
            raise ConfigError(f"no model version {version!r} in the registry")
        out = _row(rows[0])
        out["deployments"] = [_row(r) for r in await self.store.fetch(
            "SELECT id, model_version, action, status, traffic_share, previous_version, at, note, published_at "
            "FROM deployments WHERE model_version = $1 OR previous_version = $1 ORDER BY at, id", version)]
        out["evaluations"] = [_row(r) for r in await self.store.fetch(
            "SELECT id, kind, created_at, summary FROM model_evaluations WHERE model_version = $1 "
            "ORDER BY created_at", version)]
        out["trades"] = await self.trades(version)
        return out

    async def trades(self, version: str) -> dict[str, Any]:
        """What trading engines made of ``version``'s signals: its TRADE outcomes in the ``outcomes`` table
        (written by the PostgreSQL sink, ``CANDLEFLOW_SINKS=postgres``): count, wins, total and mean P&L."""
        row = (await self.store.fetch(
            "SELECT count(*) AS trades, count(*) FILTER (WHERE pnl > 0) AS wins, coalesce(sum(pnl), 0) AS pnl_total, "
            "min(open_time) AS first, max(open_time) AS last FROM outcomes "
            "WHERE source = 'TRADE' AND model_version = $1 AND pnl IS NOT NULL", version))[0]
        n = int(row["trades"])
        return {"trades": n, "wins": int(row["wins"]), "pnl_total": float(row["pnl_total"]),
                "pnl_mean": float(row["pnl_total"]) / n if n else None, "hit_rate": int(row["wins"]) / n if n else None,
                "first": row["first"], "last": row["last"]}

    async def _in_status(self, name: str, status: str) -> dict[str, Any] | None:
        rows = await self.store.fetch("SELECT * FROM model_versions WHERE name = $1 AND status = $2", name, status)
        return _row(rows[0]) if rows else None

    async def active(self, name: str) -> dict[str, Any] | None:
        return await self._in_status(name, "active")

    async def candidate(self, name: str) -> dict[str, Any] | None:
        return await self._in_status(name, "candidate")

    async def names(self) -> list[str]:
        return [r["name"] for r in await self.store.fetch("SELECT DISTINCT name FROM model_versions ORDER BY 1")]

    async def artifact_dir(self, version: str) -> Path:
        """The verified artifact directory of a registered version."""
        rows = await self.store.fetch("SELECT artifact_sha256 FROM model_versions WHERE version = $1", version)
        if not rows:
            raise ConfigError(f"no model version {version!r} in the registry")
        return self.artifacts.open(rows[0]["artifact_sha256"])

    # ---- register ---------------------------------------------------------------------------------
    async def register(self, model_dir: str | Path, name: str | None = None, evaluation: dict[str, Any] | None = None,
                       note: str = "registered") -> str:
        """Store ``model_dir`` as an artifact and record its version (idempotent); returns the version."""
        from training.scorer import load_scorer

        scorer = load_scorer(model_dir)  # refuses a directory the workers would refuse
        sha, path = self.artifacts.store(model_dir)
        name = name or scorer.name
        files = manifest(path)
        metadata = {"kind": scorer.kind, "horizons": list(scorer.horizons), "artifact_dir": str(path),
                    "source_dir": str(Path(model_dir).resolve()), "training_range": scorer.metadata[0].training_range,
                    "training_metrics": {m.horizon: m.metrics for m in scorer.metadata}}
        pool = await self._pool()
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO model_artifacts (sha256, path, files, size_bytes) VALUES ($1, $2, $3, $4) "
                                   "ON CONFLICT (sha256) DO NOTHING", sha, str(path), json.dumps(files),
                                   sum(int(f["size"]) for f in files.values()))
                new = await conn.fetchval(
                    "INSERT INTO model_versions (version, name, created_at, metadata, artifact_sha256, status, traffic_share) "
                    "VALUES ($1, $2, now(), $3, $4, 'registered', 0) ON CONFLICT (version) DO NOTHING RETURNING version",
                    scorer.version, name, json.dumps(metadata, default=str), sha)
                if new:
                    await self._record(conn, scorer.version, "register", "registered", 0.0, None, note, None)
                else:
                    known = await conn.fetchval("SELECT name FROM model_versions WHERE version = $1", scorer.version)
                    if known != name:
                        raise ConfigError(f"{scorer.version} is already registered as model {known!r}, not {name!r}")
                    log.info("%s is already registered; keeping its first artifact", scorer.version)
                if evaluation is not None:
                    await self._add_evaluation(conn, scorer.version, evaluation)
        except ConfigError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        log.info("registered %s (%s) as %s at %s", scorer.version, name, "new" if new else "existing", path)
        return scorer.version

    async def add_evaluation(self, version: str, report: dict[str, Any], kind: str = "evaluate") -> str:
        pool = await self._pool()
        async with pool.acquire() as conn:
            return await self._add_evaluation(conn, version, report, kind)

    @staticmethod
    async def _add_evaluation(conn, version: str, report: dict[str, Any], kind: str = "evaluate") -> str:
        summary = {h: {**r["classification"], "avg_return_bps": r["backtest"]["model"]["avg_return_bps"],
                       "rows": r["rows"]} for h, r in report.get("horizons", {}).items()}
        eid = uuid.uuid4().hex
        await conn.execute("INSERT INTO model_evaluations (id, model_version, kind, summary, report) "
                           "VALUES ($1, $2, $3, $4, $5)", eid, version, kind, json.dumps(summary),
                           json.dumps(report, default=str, allow_nan=False))
        return eid

    async def reject(self, version: str, note: str) -> None:
        """Record that ``version`` was not made a candidate, and why (no event: nothing changes for workers)."""
        pool = await self._pool()
        async with pool.acquire() as conn:
            await self._record(conn, version, "reject", "registered", 0.0, None, note, None)

    # ---- state changes ----------------------------------------------------------------------------
    async def activate(self, version: str, note: str = "promoted") -> dict[str, Any]:
        """Serve ``version`` to all traffic; the active one before it is retired."""
        async def change(conn, row):
            if row["status"] == "active":
                raise ConfigError(f"{version} is already active")
            prev = await self._demote(conn, row["name"], "active", "retired")
            await self._set(conn, version, "active", 1.0)
            return "activate", "active", 1.0, prev
        return await self._change(version, note, change)

    async def set_candidate(self, version: str, share: float, note: str = "candidate") -> dict[str, Any]:
        """Route ``share`` of the traffic to ``version``; a previous candidate goes back to ``registered``."""
        if not 0.0 < share <= 1.0:
            raise ConfigError(f"candidate traffic share must be in (0, 1], got {share}")

        async def change(conn, row):
            if row["status"] == "active":
                raise ConfigError(f"{version} is the active version; it cannot also be the candidate")
            prev = None if row["status"] == "candidate" else await self._demote(conn, row["name"], "candidate", "registered")
            await self._set(conn, version, "candidate", share)
            return "candidate", "candidate", share, prev
        return await self._change(version, note, change)

    async def retire(self, version: str, note: str = "retired") -> dict[str, Any]:
        """Stop serving ``version`` (a candidate ends its experiment). The active version cannot be retired."""
        async def change(conn, row):
            if row["status"] == "active":
                raise ConfigError(f"{version} is active: promote another version or roll back instead")
            await self._set(conn, version, "retired", 0.0)
            return "retire", "retired", 0.0, None
        return await self._change(version, note, change)

    async def rollback(self, name: str, note: str = "rollback") -> dict[str, Any]:
        """Serve the version that was active before the current one again; the current one is retired and
        a running candidate is withdrawn (back to ``registered``), as the workers do on a rollback event."""
        pool = await self._pool()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _LOCK_PREFIX + name)
            history = await conn.fetch(
                "SELECT d.action, d.model_version, d.previous_version FROM deployments d JOIN model_versions v "
                "ON v.version = d.model_version WHERE v.name = $1 AND d.action IN ('activate', 'rollback') "
                "ORDER BY d.at, d.id", name)
            current = await self.active(name)
            target = previous_active([dict(r) for r in history], current["version"] if current else None)
            if current is None or target is None:
                raise ConfigError(f"{name}: no earlier active version to roll back to")
        return await self._change(target, note, self._rollback_change(current["version"]))

    def _rollback_change(self, current: str):
        async def change(conn, row):
            await self._set(conn, current, "retired", 0.0)
            # Workers drop the candidate on a rollback (models.deployment): the registry says the same.
            await self._demote(conn, row["name"], "candidate", "registered")
            await self._set(conn, row["version"], "active", 1.0)
            return "rollback", "active", 1.0, current
        return change

    async def _change(self, version: str, note: str, change) -> dict[str, Any]:
        pool = await self._pool()
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow("SELECT * FROM model_versions WHERE version = $1", version)
                if row is None:
                    raise ConfigError(f"no model version {version!r} in the registry")
                # One change at a time per model name: the unique indexes would refuse a race, this avoids it.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _LOCK_PREFIX + row["name"])
                row = await conn.fetchrow("SELECT * FROM model_versions WHERE version = $1", version)
                action, status, share, prev = await change(conn, row)
                path = self.artifacts.open(row["artifact_sha256"])  # never point workers at a damaged copy
                event = model_event(row["name"], version, action, path, traffic_share=share, previous_version=prev,
                                    reason=note)
                await self._record(conn, version, action, status, share, prev, note, event)
        except ConfigError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        log.info("%s %s %s (previous %s): %s", row["name"], action, version, prev, note)
        await self._publish(event)
        return event

    @staticmethod
    async def _set(conn, version: str, status: str, share: float) -> None:
        await conn.execute("UPDATE model_versions SET status = $2, traffic_share = $3, updated_at = now() "
                           "WHERE version = $1", version, status, share)

    async def _demote(self, conn, name: str, status: str, to: str) -> str | None:
        prev = await conn.fetchval("SELECT version FROM model_versions WHERE name = $1 AND status = $2", name, status)
        if prev is not None:
            await self._set(conn, prev, to, 0.0)
        return prev

    @staticmethod
    async def _record(conn, version: str, action: str, status: str, share: float, prev: str | None, note: str,
                      event: dict[str, Any] | None) -> None:
        await conn.execute(
            "INSERT INTO deployments (id, model_version, status, traffic_share, at, note, action, previous_version, event) "
            "VALUES ($1, $2, $3, $4, clock_timestamp(), $5, $6, $7, $8)",
            event["event_id"] if event else uuid.uuid4().hex, version, status, share, note, action, prev,
            json.dumps(event) if event else None)

    async def _publish(self, event: dict[str, Any]) -> None:
        if self.publisher is None:
            log.warning("no event publisher: %s %s recorded, not published", event["action"], event["version"])
            return
        await self.publisher.publish(event)
        await self.store.fetch("UPDATE deployments SET published_at = now() WHERE id = $1", event["event_id"])

    async def publish_pending(self) -> int:
        """Publish recorded events that never reached the broker, in order, unless a newer event of the same
        model was delivered since (resending an older one would undo it). Returns the number sent."""
        rows = await self.store.fetch(
            "SELECT d.id, d.event, d.published_at, v.name FROM deployments d JOIN model_versions v "
            "ON v.version = d.model_version WHERE d.event IS NOT NULL ORDER BY v.name, d.at, d.id")
        sent = 0
        by_name: dict[str, list] = {}
        for r in rows:
            by_name.setdefault(r["name"], []).append(r)
        for events in by_name.values():
            last_sent = max((i for i, r in enumerate(events) if r["published_at"] is not None), default=-1)
            for r in events[last_sent + 1:]:
                await self._publish(json.loads(r["event"]))
                sent += 1
        return sent

