"""The learning loop of ``candleflow demo --regime-change``, run as production runs it.

A real series no model was trained on, whose market changes halfway, is published in two parts. Up to
``AFTER_CHANGE`` candles past the change: the worker's drift watch asks for a retrain on its own. With
the model registry (PostgreSQL at ``CANDLEFLOW_POSTGRES_DSN``, in a schema of its own, dropped at the end)
the demo then does what
``candleflow retrain-worker`` does: :class:`~training.retrain_worker.RetrainWorker` trains on the candle
topic from where the worker saw the change, judges walk-forward and registers a candidate (``model-events``:
the worker scores it in shadow); the rest of the series is published while
:class:`~training.promotion_worker.PromotionWorker` judges both versions pair by pair on the same candles
and promotes or rolls back; the worker hot-reloads what it decides. Without PostgreSQL the retrain is
judged the same way and the summary says the promotion needs the registry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.candle import Candle
from kafka_io.consumer import first_record
from core.errors import CandleflowError
from core.settings import Settings

__all__ = ["AFTER_CHANGE", "REGISTRY_NAME", "regime_loop"]

log = logging.getLogger(__name__)

REGISTRY_NAME = "candleflow-demo"  # the model name in the demo's own registry schema
AFTER_CHANGE = 700  # candles of the new market on the topic when the retrain runs (as tests/integration/test_learning_loop.py)


def _in_schema(dsn: str, schema: str) -> str:
    """``dsn`` with its sessions' search path set to ``schema`` (asyncpg passes unknown parameters as settings)."""
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parts.query), ("search_path", schema)])
    return urllib.parse.urlunsplit(parts._replace(query=query))


async def _open_registry(settings: Settings, workdir: Path) -> tuple[Any, Any, Any, Callable[[], Awaitable[None]]] | str:
    """(registry, store, publisher, drop) on a schema of its own in PostgreSQL, which ``drop`` removes: the
    demo never touches a real registry's tables. Or why there is none."""
    import asyncpg

    from storage.postgres import PostgresStore
    from training.artifacts import ArtifactStore
    from training.model_events import EventPublisher
    from training.registry import ModelRegistry

    dsn, schema = settings.storage.postgres_dsn, f"candleflow_demo_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        finally:
            await conn.close()
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        return (f"no model registry: PostgreSQL at CANDLEFLOW_POSTGRES_DSN is not reachable "
                f"({type(exc).__name__}); the retrain is judged, the A/B test needs the registry")

    async def drop() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()

    store = PostgresStore(_in_schema(dsn, schema))
    try:
        await store.start()
    except CandleflowError:
        await store.close()
        await drop()
        raise
    publisher = EventPublisher(settings)
    await publisher.__aenter__()
    return ModelRegistry(store, ArtifactStore(workdir / "artifacts"), publisher), store, publisher, drop


def _serving(settings: Settings) -> str | None:
    url = f"http://{settings.web.host}:{settings.web.port}/health"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read()).get("model_version")


async def _wait_serving(settings: Settings, version: str, timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await asyncio.to_thread(_serving, settings) == version:
            return True
        await asyncio.sleep(0.5)
    return False


async def regime_loop(settings: Settings, model_dir: Path, candles: list[Candle], changed_at: int, workdir: Path,
                      publish: Callable[[list[Candle]], Awaitable[None]], request_timeout_s: float = 180.0,
                      decision_timeout_s: float = 300.0) -> dict[str, Any]:
    """Publish ``candles`` (via ``publish``) around the learning loop; what happened, for the summary."""
    from training.scorer import load_scorer
    from training.promotion_worker import PromotionWorker
    from training.retrain_trial import retrain_and_compare
    from training.retrain_window import load_window
    from training.retrain_worker import RetrainConfig, RetrainWorker

    step, t0 = candles[1].open_time - candles[0].open_time, candles[changed_at].open_time
    report: dict[str, Any] = {"symbol": candles[0].symbol, "candles": len(candles), "changed_at": changed_at,
                              "request": None, "retrain": None, "promotion": None}
    split = min(len(candles), changed_at + AFTER_CHANGE)
    opened = await _open_registry(settings, workdir)
    registry, store, publisher, drop = opened if not isinstance(opened, str) else (None, None, None, None)
    try:
        if registry is not None:
            await registry.activate(await registry.register(model_dir, name=REGISTRY_NAME), note="the demo's model")
        await publish(candles[:split])
        request = await first_record(settings, settings.topic("retrain-requests"), request_timeout_s)
        if request is None:
            await publish(candles[split:])
            return report
        since = (request.get("scope") or {}).get("since")
        report["request"] = {"after_candles": (request["time"] - t0) // step - 1, "reasons": request["reasons"],
                             "since_from_change": (since - t0) // step if since is not None else 0}
        print(f"retrain request {request['id'][:12]}: retraining on the candle topic ...", file=sys.stderr)
        config = RetrainConfig(use_postgres=False, name=REGISTRY_NAME, work_dir=workdir / "retrain",
                               artifacts_dir=workdir / "artifacts")
        if registry is None:
            series = await load_window(config, None, request.get("scope"), settings)
            trial = await asyncio.to_thread(retrain_and_compare, series, load_scorer(model_dir), workdir / "retrained", config)
            result = {"version": trial.version, "decision": trial.decision, "reason": trial.reason,
                      "trained_on": trial.trained_on}
            report["promotion"] = {"decision": "not run", "reason": opened}
        else:
            result = await RetrainWorker(settings, config, registry).handle(request)
        report["retrain"] = {"version": result["version"], "decision": result["decision"], "reason": result["reason"],
                             "candles": result["trained_on"]["candles"],
                             "from_change": (result["trained_on"]["from"] - t0) // step}
        if registry is None or result["decision"] != "candidate":
            await publish(candles[split:])
            return report
        print(f"candidate {result['version']} in shadow; judging it against {request['model_version']} "
              f"on the rest of the series ...", file=sys.stderr)
        judge = PromotionWorker(settings, registry, REGISTRY_NAME, refresh_s=0.5)
        judging = asyncio.create_task(judge.run(max_decisions=1))
        try:
            await publish(candles[split:])
            await asyncio.wait_for(asyncio.shield(judging), decision_timeout_s)
        except asyncio.TimeoutError:
            report["promotion"] = {"decision": "undecided", "reason": f"no decision {decision_timeout_s:.0f} s after "
                                   "the last candle (too few paired outcomes)"}
            return report
        finally:
            if not judging.done():  # its consumer is stopped before the registry closes
                judging.cancel()
                await asyncio.gather(judging, return_exceptions=True)
        decision = judge.decisions[0]
        serving = result["version"] if decision["decision"] == "promote" else request["model_version"]
        report["promotion"] = {"decision": decision["decision"], "reason": decision["reason"],
                               "paired_outcomes": decision.get("n_active"), "accuracy_active": decision.get("accuracy_active"),
                               "accuracy_candidate": decision.get("accuracy_candidate"),
                               "serving": serving, "worker_serves_it": await _wait_serving(settings, serving, 60)}
        return report
    finally:
        if publisher is not None:
            await publisher.__aexit__(None, None, None)
        if store is not None:
            await store.close()
        if drop is not None:
            await drop()
