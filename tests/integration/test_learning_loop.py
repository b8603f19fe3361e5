"""The whole learning loop, live, with the default bundle and no hand-made request or forced threshold.

Real candles no model was trained on, whose market changes halfway: the worker's drift watch asks for a
retrain -> the retrain worker trains on the post-change candles from the candle topic, judged
walk-forward -> the registry publishes it as a candidate -> the worker scores it in shadow on the same
candles -> the paired judge promotes it -> the worker serves it. Live accuracy of the new version on the
new market must recover to the old version's accuracy on the old market minus 3 points.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage.postgres import PostgresStore
from core.candle_files import read_candle_file
from streams.regime_change import alternate_moves
from tests.conftest import HELD_OUT
from tests.integration.test_candle_pipeline import publish
from tests.integration.test_live_drift import first_request
from tests.training.test_registry import pg_session_dsn  # noqa: F401  (session database fixture)
from tests.waiting import wait_for
from training.artifacts import ArtifactStore
from training.promotion_worker import PromotionWorker
from training.model_events import EventPublisher, wait_for_model_event
from training.registry import ModelRegistry
from training.retrain_worker import RetrainConfig, RetrainWorker

pytestmark = pytest.mark.integration

AFTER_CHANGE = 700  # candles of the new market on the topic when the retrain runs


async def all_outcomes(settings) -> list[dict]:
    from kafka_io.consumer import read_topic

    return [record async for _, record, _ in read_topic(settings, [settings.topic("outcomes")], idle_timeout_s=3.0)]


def accuracy(outcomes, version, since=None, until=None) -> tuple[float, int]:
    verdicts = [o["direction_correct"] for o in outcomes if o["model_version"] == version
                and o["direction_correct"] is not None and (since is None or o["open_time"] >= since)
                and (until is None or o["open_time"] < until)]
    return sum(verdicts) / len(verdicts), len(verdicts)


async def test_regime_change_to_promotion_closes_the_loop(pg_session_dsn, app_settings, worker_factory,  # noqa: F811
                                                         default_bundle, tmp_path):
    settings = app_settings(model_dir=default_bundle)
    worker = worker_factory(settings)
    old = worker.get("/health")["model_version"]
    name = f"loop-{uuid.uuid4().hex[:6]}"
    held_out = read_candle_file(HELD_OUT / "ETC-BTC_5m.csv.gz").candles
    change = len(held_out) // 2
    candles = alternate_moves(held_out, change)
    store = PostgresStore(pg_session_dsn)
    async with EventPublisher(settings) as publisher:
        registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"), publisher)
        try:
            assert await registry.register(default_bundle, name=name) == old
            await registry.activate(old)

            await publish(settings, candles[:change + AFTER_CHANGE])
            request = await first_request(settings, 180)  # the worker's own
            assert request is not None and request["model_version"] == old

            config = RetrainConfig(use_postgres=False, name=name, group_id=f"retrain-{name}",
                                   work_dir=tmp_path / "work", artifacts_dir=tmp_path / "artifacts")
            result = await RetrainWorker(settings, config, registry).handle(request)
            assert result["decision"] == "candidate", result
            new = result["version"]
            wait_for(lambda: (worker.get("/models").get("candidate") or {}).get("version") == new,
                     what="the worker scoring the candidate in shadow")

            judge = PromotionWorker(settings, registry, name, refresh_s=0.5,
                                    min_outcomes=500, check_every=100)
            run = asyncio.create_task(judge.run(max_decisions=1))
            await publish(settings, candles[change + AFTER_CHANGE:])
            await wait_for_model_event(settings, lambda e: e["name"] == name and e["action"] == "activate"
                                       and e["version"] == new, timeout_s=180)
            await asyncio.wait_for(run, 30)
            decision = judge.decisions[0]
            assert decision["decision"] == "promote" and decision["paired"], decision
            await asyncio.to_thread(wait_for, lambda: worker.get("/health")["model_version"] == new,
                                    what="the worker serving the promoted version")
        finally:
            await store.close()

    outcomes = await all_outcomes(settings)
    changed_at, candidate_from = candles[change].open_time, candles[change + AFTER_CHANGE].open_time
    old_before, n_before = accuracy(outcomes, old, until=changed_at)
    old_after, _ = accuracy(outcomes, old, since=candidate_from)
    new_after, n_after = accuracy(outcomes, new, since=candidate_from)
    print(f"\nold version: {old_before:.3f} on the old market ({n_before}), {old_after:.3f} on the new; "
          f"new version on the new market: {new_after:.3f} ({n_after}); judge: {decision['reason']}")
    assert new_after >= old_before - 0.03 and new_after > old_after
