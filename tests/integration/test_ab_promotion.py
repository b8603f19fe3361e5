"""A/B on the real broker and PostgreSQL: a better candidate is promoted, a worse one rolled back,
each decision recorded with its numbers and published on model-events; a judge restarted mid-experiment
counts on from what the one before it had counted."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from schemas import AvroCodec, LocalSchemaStore
from storage.postgres import PostgresStore
from training.artifacts import ArtifactStore
from training.promotion_worker import PromotionWorker
from training.model_events import EventPublisher, wait_for_model_event
from training.registry import ModelRegistry
from tests.training.test_registry import pg_session_dsn, small_models  # noqa: F401  (session fixtures)

pytestmark = pytest.mark.integration


async def send_outcomes(settings, accuracy: dict[str, float], n: int) -> None:
    """``n`` LABEL outcomes per version, right in ``accuracy[version]`` of the cases (deterministic)."""
    await send_outcomes_from(settings, accuracy, 0, n)


async def send_outcomes_from(settings, accuracy: dict[str, float], start: int, end: int) -> None:
    """Outcomes ``start`` .. ``end`` - 1 of :func:`send_outcomes`' sequence."""
    codec = AvroCodec("Outcome", LocalSchemaStore())
    async with AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap, linger_ms=5) as producer:
        for i in range(start, end):
            for version, share in accuracy.items():
                right = (i * 7919 % 1000) < share * 1000
                outcome = {"id": f"{version}-{i}", "source": "LABEL", "prediction_id": f"p-{version}-{i}",
                           "signal_id": None, "symbol": f"S{i % 40}", "timeframe": "5m", "open_time": i * 300_000,
                           "horizon": 1, "model_version": version, "realized_log_return": 0.001 if right else -0.001,
                           "direction_correct": right, "entry_price": None, "exit_price": None, "pnl": None,
                           "status": None}
                await producer.send(settings.topic("outcomes"), codec.encode(outcome), key=outcome["symbol"].encode())
        await producer.flush()


async def test_better_candidate_promoted_worse_rolled_back(pg_session_dsn, small_models, app_settings, tmp_path):  # noqa: F811
    settings = app_settings()
    name = f"ab-{uuid.uuid4().hex[:6]}"
    store = PostgresStore(pg_session_dsn)
    async with EventPublisher(settings) as publisher:
        registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"), publisher)
        try:
            active, better, worse = [await registry.register(m, name=name) for m in small_models[:3]]
            await registry.activate(active)
            await registry.set_candidate(better, 0.5)
            judge = PromotionWorker(settings, registry, name, refresh_s=0.5,
                                    min_outcomes=400, check_every=100)
            run = asyncio.create_task(judge.run(max_decisions=2))
            await send_outcomes(settings, {active: 0.52, better: 0.60}, 600)
            promoted = await wait_for_model_event(settings, lambda e: e["name"] == name and e["action"] == "activate"
                                                  and e["version"] == better, timeout_s=60)
            assert (await registry.active(name))["version"] == better
            first = judge.decisions[0]
            assert first["decision"] == "promote" and first["p_value"] < 0.05
            assert first["accuracy_candidate"] > first["accuracy_active"] + 0.05 and first["n_candidate"] >= 400

            await registry.set_candidate(worse, 0.5)
            await send_outcomes(settings, {better: 0.58, worse: 0.45}, 600)
            await wait_for_model_event(settings, lambda e: e["name"] == name and e["action"] == "retire"
                                       and e["version"] == worse, timeout_s=60)
            await asyncio.wait_for(run, 30)
            second = judge.decisions[1]
            assert second["decision"] == "rollback" and second["p_worse"] < 0.01
            assert (await registry.active(name))["version"] == better and await registry.candidate(name) is None
            note = (await registry.show(worse))["deployments"][-1]["note"]
            assert note.startswith("A/B rollback:") and json.loads(note.split(":", 1)[1])["n_candidate"] >= 400
            assert promoted["reason"]
        finally:
            await store.close()


async def test_a_restarted_judge_keeps_the_experiments_counts(pg_session_dsn, small_models, app_settings, tmp_path):  # noqa: F811
    settings = app_settings()
    name = f"ab-{uuid.uuid4().hex[:6]}"
    store = PostgresStore(pg_session_dsn)
    async with EventPublisher(settings) as publisher:
        registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"), publisher)
        try:
            active, better = [await registry.register(m, name=name) for m in small_models[5:7]]
            await registry.activate(active)
            await registry.set_candidate(better, 0.5)
            options = dict(refresh_s=0.5, min_outcomes=500, check_every=50)
            first, stop = PromotionWorker(settings, registry, name, **options), asyncio.Event()
            run = asyncio.create_task(first.run(stop))
            await send_outcomes(settings, {active: 0.52, better: 0.60}, 300)  # 300 pairs: too few to decide
            for _ in range(600):
                if first.judge is not None and first.judge.n[better] >= 300:
                    break
                await asyncio.sleep(0.05)
            assert first.judge.n[better] == 300 and not first.decisions
            stop.set()
            await asyncio.wait_for(run, 30)

            # A new process: it starts from nothing but the registry and the outcomes topic.
            second = PromotionWorker(settings, registry, name, **options)
            run = asyncio.create_task(second.run(max_decisions=1))
            await send_outcomes_from(settings, {active: 0.52, better: 0.60}, 300, 600)
            await asyncio.wait_for(run, 60)
            [decision] = second.decisions
            # Promoted at 500 pairs: 300 counted by the first judge (read again) and 200 new ones.
            assert decision["decision"] == "promote" and decision["n_candidate"] == 500
            assert (await registry.active(name))["version"] == better
        finally:
            await store.close()



async def test_outcomes_written_while_the_judge_rewinds_are_counted(pg_session_dsn, small_models, app_settings,
                                                                      tmp_path, monkeypatch):  # noqa: F811
    """The dangerous moment, forced: every outcome is written between the judge's look for where the
    experiment begins (nothing yet) and its seek there."""
    import training.promotion_worker as promotion_worker

    settings = app_settings()
    name = f"ab-{uuid.uuid4().hex[:6]}"
    store = PostgresStore(pg_session_dsn)
    async with EventPublisher(settings) as publisher:
        registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"), publisher)
        try:
            active, better = [await registry.register(m, name=name) for m in small_models[7:9]]
            await registry.activate(active)
            await registry.set_candidate(better, 0.5)
            looked_up = promotion_worker.offsets_at_time

            async def outcomes_arrive_after_the_lookup(consumer, tps, at_ms):
                found = await looked_up(consumer, tps, at_ms)
                assert all(offset is None for offset in found.values())  # nothing since the candidate began
                await send_outcomes(settings, {active: 0.52, better: 0.60}, 300)
                return found

            monkeypatch.setattr(promotion_worker, "offsets_at_time", outcomes_arrive_after_the_lookup)
            judge, stop = PromotionWorker(settings, registry, name, refresh_s=0.5, min_outcomes=500,
                                          check_every=50), asyncio.Event()
            run = asyncio.create_task(judge.run(stop))
            for _ in range(600):
                if judge.judge is not None and judge.judge.n[better] >= 300:
                    break
                await asyncio.sleep(0.05)
            assert judge.judge.n[better] == 300 and not judge.decisions
            stop.set()
            await asyncio.wait_for(run, 30)
        finally:
            await store.close()
