"""The outcome loop on the real broker: predictions labelled once their horizon passed, the online
model learning from them, and its state surviving a worker restart."""

from __future__ import annotations

import asyncio
import math

import pytest

from streams.broker import free_port
from tests.integration.test_candle_pipeline import all_out, collect, publish, real_candles
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def expected_outcomes(candles) -> int:
    """Horizon-1 labels: a prediction is labelled when the next candle of its series exists."""
    by_series: dict[str, list[int]] = {}
    for c in candles:
        by_series.setdefault(c.symbol, []).append(c.open_time)
    return sum(1 for times in by_series.values() for a, b in zip(times, times[1:]) if b - a == 300_000)



def test_predictions_are_labelled_and_learned_and_the_state_survives_a_restart(app_settings, worker_factory):
    settings = app_settings()
    worker = worker_factory(settings)
    candles = real_candles(150)
    n_outcomes = expected_outcomes(candles)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    predictions = {p["id"]: p for p in got["predictions"]}

    outcomes = asyncio.run(_read_outcomes(settings, n_outcomes))
    assert len(outcomes) == n_outcomes and len({o["id"] for o in outcomes}) == n_outcomes
    by_time = {(c.symbol, c.open_time): c for c in candles}
    for o in outcomes:
        p = predictions[o["prediction_id"]]
        later = by_time[(o["symbol"], o["open_time"] + 300_000)]
        assert o["realized_log_return"] == pytest.approx(math.log(later.close / p["close"]), abs=1e-12)
        if o["realized_log_return"] != 0:
            assert o["direction_correct"] == ((p["direction"] == "UP") == (o["realized_log_return"] > 0))

    learned = wait_for(lambda: worker.get("/models")["online"]["learned"] >= n_outcomes - 20 and worker.get("/models"))
    assert learned["accuracy"][0]["model_version"] == worker.get("/health")["model_version"]
    before = learned["online"]["learned"]

    # Restart: a new worker process of the same app recovers the learner from its changelog.
    worker.stop()
    restarted = worker_factory(settings)
    after = wait_for(lambda: restarted.get("/models")["online"]["learned"] and restarted.get("/models"))
    assert after["online"]["learned"] == before


async def _read_outcomes(settings, n: int) -> list[dict]:
    from kafka_io.consumer import read_topic

    out: list[dict] = []

    async def consume():
        async for _, record, _ in read_topic(settings, [settings.topic("outcomes")]):
            out.append(record)
            if len(out) >= n:
                return

    try:
        await asyncio.wait_for(consume(), 90)
    except asyncio.TimeoutError:
        pass
    return out


def test_signals_carry_the_consensus_of_similar_past_patterns(app_settings, worker_factory):
    """Pattern search on (embedded FAISS): once labelled patterns exist, signals carry their consensus."""
    settings = app_settings(patterns={"enabled": True})
    worker_factory(settings)
    candles = real_candles(400)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    with_consensus = [s for s in got["signals"] if s.get("pattern_k")]
    assert with_consensus, "later signals should find labelled patterns"
    for s in with_consensus:
        assert 0 < s["pattern_k"] <= settings.patterns.k
        assert 0.0 <= s["pattern_bullish_share"] + s["pattern_bearish_share"] <= 1.0
        assert -1.0 <= s["pattern_mean_similarity"] <= 1.0 and math.isfinite(s["pattern_mean_outcome"])
    # Signals need warm features (34 candles); by then the earlier labels have filled the store.
    assert len(with_consensus) == len(got["signals"])


def test_an_unreachable_pattern_store_costs_signals_their_consensus_and_nothing_else(app_settings, worker_factory,
                                                                                    monkeypatch):
    """Pattern search on, its Weaviate down (nothing listens on the port): every candle is still
    predicted, signals go out without pattern fields, the worker stays ready and says why once."""
    monkeypatch.setenv("CANDLEFLOW_WEAVIATE_URL", f"http://127.0.0.1:{free_port()}")
    settings = app_settings(patterns={"enabled": True})
    worker = worker_factory(settings)
    candles = real_candles(120)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    assert len({p["id"] for p in got["predictions"]}) == len(candles) and got["signals"]
    assert not any(s.get("pattern_k") for s in got["signals"])
    assert worker.get("/ready")["ready"] and not got["dead-letters"]
    assert "pattern store unavailable" in worker.log_path.read_text()


class _Forged:
    """What an attacker able to produce to the changelog would send: a pickle that runs a command on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_forged_learner_changelog_value_is_refused_and_the_worker_serves_on(app_settings, worker_factory, tmp_path):
    import pickle

    from aiokafka import AIOKafkaProducer

    settings = app_settings(partitions=1)
    worker = worker_factory(settings)
    candles = real_candles(60)
    asyncio.run(publish(settings, candles))
    asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    wait_for(lambda: worker.get("/models")["online"]["learned"] > 0, what="the learner written to its table")
    worker.stop()

    marker = tmp_path / "pwned"

    async def forge():
        async with AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap) as producer:
            await producer.send_and_wait(f"{settings.app_id}-learners-changelog", pickle.dumps(_Forged(marker)),
                                         key=b"partition-0", partition=0)

    asyncio.run(forge())
    restarted = worker_factory(settings)  # restores the learners table from the changelog (the forged value last)
    later = real_candles(80)[len(candles):]
    asyncio.run(publish(settings, later))
    got = asyncio.run(collect(settings, all_out(len(candles) + len(later), 0, settings.signal_threshold)))
    assert len({p["id"] for p in got["predictions"]}) == len(candles) + len(later)  # it serves on
    assert not marker.exists(), "the forged pickle ran"
    log = restarted.log_path.read_text()
    assert "learners[partition-0] unreadable (sealed state: not sealed" in log, log[-3000:]
    assert restarted.get("/health")["ready"]
