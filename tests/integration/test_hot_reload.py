"""Hot reload and A/B on a running worker: a new version published on model-events while candles
stream; no candle lost, every prediction carries one consistent version, each symbol switches once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from learning.promotion import assign_version
from core.candle import Candle
from tests.integration.test_candle_pipeline import collect, publish, real_candles
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def second_model(tmp_path_factory, trained_model):
    """Another real model: the same data and features, a different horizon, so a different version."""
    from training.train import train_model
    from tests.conftest import CANDLES

    out = tmp_path_factory.mktemp("model-h2")
    train_model(sorted(CANDLES.glob("*.csv.gz")), out, horizon=2, progress=False)
    return out


def many_symbols(n_symbols: int, per_symbol: int, split: tuple[str, str, float] | None = None) -> list[Candle]:
    """The real series under several symbol names (so a traffic share splits them).

    With ``split=(active, candidate, share)`` the names are chosen so that both versions serve some of them: which
    symbols a share sends to the candidate hangs on the candidate's version (a hash), and a version that sent all
    eight names one way made a split test fail by luck."""
    base = real_candles(per_symbol)
    bases = sorted({c.symbol for c in base})
    suffixes = list(range(n_symbols // len(bases)))
    if split is not None:
        active, candidate, share = split
        sides = {k: {assign_version(f"{b}-{k}", active, candidate, share) for b in bases} for k in range(1000)}
        first_of = {v: next(k for k in sides if v in sides[k]) for v in (active, candidate)}
        chosen = sorted(set(first_of.values()))
        suffixes = chosen + [k for k in sides if k not in chosen][:len(suffixes) - len(chosen)]
    out = [Candle(f"{c.symbol}-{k}", c.timeframe, c.open_time, c.open, c.high, c.low, c.close, c.volume)
           for k in suffixes for c in base]
    return sorted(out, key=lambda c: (c.open_time, c.symbol))


async def publish_event(settings, event: dict) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap)
    await producer.start()
    try:
        event = {"event_id": uuid.uuid4().hex, "name": "candleflow", "previous_version": None, "reason": "test",
                 "time": int(time.time() * 1000), **event}
        await producer.send_and_wait(settings.topic("model-events"), json.dumps(event).encode(), key=b"candleflow")
    finally:
        await producer.stop()



def deploy_candidate(settings, worker, version: str, artifact_dir, share: float) -> None:
    """Publish ``version`` as the candidate for ``share`` of the symbols and wait until ``worker`` holds it."""
    asyncio.run(publish_event(settings, {"version": version, "action": "candidate", "artifact_dir": str(artifact_dir),
                                         "traffic_share": share}))
    wait_for(lambda: (worker.get("/models").get("candidate") or {}).get("version") == version)


def test_new_version_mid_stream_then_candidate_split(app_settings, worker_factory, second_model):
    from models.loading import load_model

    settings = app_settings(ab_mode="split")  # the candidate serves its share of symbols (not in shadow)
    worker = worker_factory(settings)
    old = worker.get("/models")["active"]["version"]
    new = load_model(second_model).version
    assert old != new
    candles = many_symbols(8, 60, split=(new, old, 0.5))  # later: the old version as a candidate for half
    half = len(candles) // 2

    def stream_second_half() -> None:  # keeps candles flowing while the reload happens
        for i in range(half, len(candles), 20):
            asyncio.run(publish(settings, candles[i:i + 20]))

    asyncio.run(publish(settings, candles[:half]))
    feeder = threading.Thread(target=stream_second_half)
    feeder.start()
    asyncio.run(publish_event(settings, {"version": new, "action": "activate", "artifact_dir": str(second_model)}))
    feeder.join()
    wait_for(lambda: worker.get("/models")["active"]["version"] == new)
    got = asyncio.run(collect(settings, lambda r: len(r["predictions"]) >= len(candles)))
    # The drift watches of the reloaded version are armed from its training profile, next to the old one's.
    wait_for(lambda: set(worker.get("/models")["drift"]["armed"]) == {old, new}, what="both versions armed")
    predictions = got["predictions"]
    assert len(predictions) == len(candles) == len({(p["symbol"], p["open_time"]) for p in predictions})
    assert {p["model_version"] for p in predictions} <= {old, new}
    for symbol in {c.symbol for c in candles}:
        versions = [p["model_version"] for p in sorted(predictions, key=lambda p: p["open_time"]) if p["symbol"] == symbol]
        switches = sum(a != b for a, b in zip(versions, versions[1:]))
        assert switches <= 1 and (switches == 0 or versions[0] == old)

    # A candidate for half of the symbols: both versions serve, each symbol always the same one.
    deploy_candidate(settings, worker, old, worker.settings.model_dir, 0.5)
    later = [Candle(c.symbol, c.timeframe, c.open_time + 86_400_000, c.open, c.high, c.low, c.close, c.volume)
             for c in candles if c.open_time == candles[-1].open_time]
    asyncio.run(publish(settings, later))
    final = asyncio.run(collect(settings, lambda r: len(r["predictions"]) >= len(candles) + len(later)))
    split = {p["symbol"]: p["model_version"] for p in final["predictions"] if p["open_time"] > candles[-1].open_time}
    assert len(split) == len(later) and set(split.values()) == {old, new}

    # A broken model: the event is refused at load, the active version keeps serving.
    asyncio.run(publish_event(settings, {"version": "broken-v", "action": "activate", "artifact_dir": "/nonexistent"}))
    wait_for(lambda: worker.get("/models")["load_errors"])
    assert worker.get("/models")["active"]["version"] == new and worker.get("/ready")["ready"]
