"""A worker serving the default bundle asks for a retrain on its own when the market changes.

Real candles no model was trained on (``data/candles/held-out``), their regime changed from the middle
(:func:`streams.regime_change.alternate_moves`), one message per candle as a live feed sends them: the
worker's drift watches are armed from the bundle's training profile, and a ``retrain-requests`` record
names the bundle within 1,500 candles of the change, none before it. ``/models`` shows the watch, and the
adaptive signal threshold's changes are published on ``signal-thresholds``.
"""

from __future__ import annotations

import asyncio

import pytest

from models.loading import load_model
from core.candle_files import read_candle_file
from streams.regime_change import alternate_moves
from tests.conftest import HELD_OUT
from tests.integration.test_candle_pipeline import publish
from tests.training.test_registry import pg_session_dsn  # noqa: F401  (session database fixture)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

STEP_MS = 300_000


async def first_request(settings, timeout_s: float, topic: str = "retrain-requests") -> dict | None:
    from kafka_io.consumer import first_record

    return await first_record(settings, settings.topic(topic), timeout_s)


def test_a_regime_change_makes_the_worker_ask_for_a_retrain(app_settings, worker_factory, default_bundle):
    version = load_model(default_bundle).version
    settings = app_settings(model_dir=default_bundle, adaptive_threshold=True)
    worker = worker_factory(settings)
    assert worker.get("/health")["model_version"] == version
    training = worker.get("/models")["active"]["training"]
    assert sorted(training["accuracy"]) == ["h1", "h2", "h3", "h4", "h5"] and training["reference_rows"] == 1000

    candles = read_candle_file(HELD_OUT / "ETC-BTC_5m.csv.gz").candles
    change = len(candles) // 2
    changed_at = candles[change].open_time
    asyncio.run(publish(settings, alternate_moves(candles, change)))

    request = asyncio.run(first_request(settings, 180))
    assert request is not None, f"no retrain request; watches: {worker.get('/models')['drift']}"
    # The request's time is the close of the label candle of the outcome that fired it.
    label_candle = (request["time"] - changed_at) // STEP_MS - 1
    print(f"\nretrain request {label_candle} candles after the change: {request['reasons']}")
    assert 0 <= label_candle <= 1500, request
    assert request["model_version"] == version and request["horizon"] == 1

    def watched():
        drift = worker.get("/models")["drift"]
        return [w for w in drift["watches"] if w.get("requests")] and drift

    drift = wait_for(watched, what="the watch's request on /models")
    assert drift["armed"] == [version]
    [watch] = [w for w in drift["watches"] if w.get("requests")]
    # The dashboard charts live accuracy per version with the loop's events marked.
    learning = wait_for(lambda: (d := worker.get("/dashboard/data")["learning"])["samples"] and d,
                        what="a learning sample on the dashboard")
    assert version in learning["samples"][-1][1] and 0 < learning["samples"][-1][1][version] < 1
    assert ["serving", version] in [e[1:] for e in learning["events"]]
    assert any(e[1] == "retrain request" and e[2].startswith(version) for e in learning["events"])
    # Signals lost money at times (before the change too, on this pair): the adaptive threshold moved, and said so.
    change = asyncio.run(first_request(settings, 60, "signal-thresholds"))
    assert change is not None and change["model_version"] == version and change["mode"] == "conservative"
    assert change["to"] > change["from"] == settings.signal_threshold and change["signals"] == 100
    assert any(e[1] == "threshold" for e in worker.get("/dashboard/data")["learning"]["events"])
    thresholds = worker.get("/models")["signal_thresholds"]
    assert thresholds and {t["model_version"] for t in thresholds} == {version}
    assert all(settings.signal_threshold <= t["threshold"] <= settings.signal_threshold_max for t in thresholds)
    # The change persists, so the watch may have asked again since (at most once per min_samples outcomes).
    assert watch["last_request_ms"] >= request["time"] and watch["feature_drift"] == "watching"
    assert watch["horizon"] == 1 and watch["requests"] >= 1 and watch["seen"] >= watch["since_last"]


async def test_the_request_retrains_on_the_candles_since_the_change(pg_session_dsn, app_settings, worker_factory,  # noqa: F811
                                                                     default_bundle, tmp_path):
    """The retrain worker reads the candle topic (no files, no candle table) from where the watch saw
    the change, and registers what it trained with the comparison on the same holdout."""
    from storage.postgres import PostgresStore
    from training.artifacts import ArtifactStore
    from training.model_events import EventPublisher
    from training.registry import ModelRegistry
    from training.retrain_worker import RetrainConfig, RetrainWorker

    settings = app_settings(model_dir=default_bundle)
    worker_factory(settings)
    candles = read_candle_file(HELD_OUT / "ETC-BTC_5m.csv.gz").candles
    change = len(candles) // 2
    changed_at = candles[change].open_time
    await publish(settings, alternate_moves(candles, change))
    request = await first_request(settings, 180)
    assert request is not None
    since = request["scope"]["since"]
    assert abs(since - changed_at) <= 200 * STEP_MS, (since - changed_at) // STEP_MS  # where the error rate rose

    # The Mamba member retrained (in the candidate and each fold) for 2 epochs, as the fixture's was trained.
    config = RetrainConfig(use_postgres=False, name=f"drift-{settings.app_id}", group_id=f"retrain-{settings.app_id}",
                           work_dir=tmp_path / "work", artifacts_dir=tmp_path / "artifacts", mamba_epochs=2)
    store = PostgresStore(pg_session_dsn)
    async with EventPublisher(settings) as publisher:
        registry = ModelRegistry(store, ArtifactStore(config.artifacts_dir), publisher)
        try:
            await registry.activate(await registry.register(default_bundle, name=config.name))
            result = await RetrainWorker(settings, config, registry).handle(request)
        finally:
            await store.close()
    trained = result["trained_on"]
    print(f"\nretrained on {trained['candles']} candles from {(trained['from'] - changed_at) // STEP_MS} candles "
          f"after the change: {result['decision']}, {result['reason']}")
    assert trained["series"] == 1 and trained["from"] <= since and trained["to"] == candles[-1].open_time
    assert trained["from"] >= since - 60 * STEP_MS or trained["candles"] == config.min_candles
    assert result["decision"] in ("candidate", "rejected") and result["version"] != result["active"]
