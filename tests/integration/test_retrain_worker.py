"""A retrain request on the real broker becomes a registered, published candidate (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from storage.postgres import PostgresStore
from training.artifacts import ArtifactStore
from training.dataset import BUNDLED
from training.model_events import EventPublisher, wait_for_model_event
from training.registry import ModelRegistry
from training.retrain_worker import RetrainConfig, RetrainWorker
from tests.training.test_registry import pg_session_dsn  # noqa: F401  (session database fixture)

pytestmark = pytest.mark.integration


async def send_retrain_request(settings, request: dict, key: bytes = b"manual") -> None:
    async with AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap) as producer:
        await producer.send_and_wait(settings.topic("retrain-requests"), json.dumps(request).encode(), key=key)


async def test_retrain_request_registers_and_publishes_a_candidate(pg_session_dsn, trained_model, app_settings,  # noqa: F811
                                                                    tmp_path, worker_factory):
    settings = app_settings()
    serving = worker_factory(settings)  # a running candle worker: it must pick the candidate up
    name = f"retrain-{uuid.uuid4().hex[:6]}"
    config = RetrainConfig(files=tuple(sorted(BUNDLED.glob("*.csv.gz"))), window=3500, name=name,
                           num_boost_round=20, tolerance=1.0,  # the path under test, not LightGBM's luck
                           group_id=f"retrain-{uuid.uuid4().hex[:6]}", work_dir=tmp_path / "work",
                           artifacts_dir=tmp_path / "artifacts")
    store = PostgresStore(pg_session_dsn)
    async with EventPublisher(settings) as publisher:
        registry = ModelRegistry(store, ArtifactStore(config.artifacts_dir), publisher)
        try:
            active = await registry.register(trained_model, name=name)  # trained on the first 2,500 candles
            await registry.activate(active)
            worker = RetrainWorker(settings, config, registry)
            run = asyncio.create_task(worker.run(max_requests=2))
            await send_retrain_request(settings, {"id": "r1", "model_version": active, "time": 1,
                                                  "reasons": ["error_drift"], "evidence": {"adwin": 1}}, active.encode())
            await send_retrain_request(settings, {"id": "r2", "reasons": ["manual"], "requested_by": "test",
                                                  "scope": {}})  # arrives during the other's retrain
            event = await wait_for_model_event(settings, lambda e: e["name"] == name and e["action"] == "candidate",
                                               timeout_s=60)
            await asyncio.wait_for(run, 30)
            # two partitions, either may come first: one retrain ran, the other request was folded into it
            (handled,) = worker.handled
            assert handled["request"] in ("r1", "r2") and handled["decision"] == "candidate"
            assert event["version"] == handled["version"] != active
            assert event["traffic_share"] == 0.1 and f"retrain {handled['request']} (" in event["reason"]
            assert (await registry.candidate(name))["version"] == event["version"]
            for _ in range(300):  # the running worker loads the candidate from the artifact store
                candidate = serving.get("/models").get("candidate")
                if candidate and candidate["version"] == event["version"]:
                    break
                await asyncio.sleep(0.2)
            assert candidate and candidate["version"] == event["version"] and candidate["traffic_share"] == 0.1
            assert (await registry.active(name))["version"] == active
            shown = await registry.show(event["version"])
            assert [d["action"] for d in shown["deployments"]] == ["register", "candidate"]
            assert shown["evaluations"][0]["summary"]["1"]["rows"] > 100
            # the active version was scored on the same holdout rows
            assert any(e["kind"] == f"holdout-for-{event['version']}" for e in (await registry.show(active))["evaluations"])

            # a candidate that is not at least as good is recorded as rejected, with the numbers
            strict = RetrainWorker(settings, RetrainConfig(**{**config.__dict__, "window": 3000, "tolerance": -1.0}),
                                   registry)
            result = await strict.handle({"id": "r3", "reasons": ["manual"]})
            assert result["decision"] == "rejected" and "worse" in result["reason"]
            rejected = await registry.show(result["version"])
            assert rejected["status"] == "registered" and rejected["deployments"][-1]["action"] == "reject"
            assert "accuracy" in rejected["deployments"][-1]["note"]
        finally:
            await store.close()
