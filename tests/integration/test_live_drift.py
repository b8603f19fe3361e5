"""A worker serving the default bundle asks for a retrain on its own when the market changes.

Real candles no model was trained on (``data/candles/held-out``), their regime changed from the middle
(:func:`streams.regime_change.alternate_moves`), one message per candle as a live feed sends them: the
worker's drift watches are armed from the bundle's training profile, and a ``retrain-requests`` record
names the bundle within 1,500 candles of the change, none before it. ``/models`` shows the watch.
"""

from __future__ import annotations

import asyncio

import pytest

from models.loading import load_model
from streams.candle_files import read_candle_file
from streams.regime_change import alternate_moves
from tests.conftest import HELD_OUT
from tests.integration.test_candle_pipeline import publish
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

STEP_MS = 300_000


async def first_request(settings, timeout_s: float) -> dict | None:
    from streams.consumer import read_topic

    async def read():
        async for _, record, _ in read_topic(settings, [settings.topic("retrain-requests")]):
            return record

    try:
        return await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError:
        return None


def test_a_regime_change_makes_the_worker_ask_for_a_retrain(app_settings, worker_factory, default_bundle):
    version = load_model(default_bundle).version
    settings = app_settings(model_dir=default_bundle)
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
    assert watch["last_request_ms"] == request["time"] and watch["feature_drift"] == "watching"
