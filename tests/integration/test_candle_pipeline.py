"""End to end on the real broker: real candles in, one prediction per valid candle, invalid input
in dead-letters with a reason, deterministic ids across fresh apps, and the agent keeps running."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from core.signals import prediction_id
from core.candle import Candle
from core.candle_files import read_candle_file
from kafka_io.consumer import read_topic
from streams.producer import CandleProducer, merge_by_time
from tests.conftest import CANDLES

pytestmark = pytest.mark.integration

WRONG_KEY = b"elsewhere"  # on 4 partitions its partition (1) is not the bundled symbols' (2)


def real_candles(per_symbol: int) -> list[Candle]:
    series = [read_candle_file(f).candles[3000:3000 + per_symbol] for f in sorted(CANDLES.glob("*.csv.gz"))]
    return list(merge_by_time(series))


def invalid_messages(candles: list[Candle]) -> list[tuple[str, object]]:
    """(expected reason fragment, what to send): bytes or a Candle the pipeline must refuse."""
    c = candles[-1]
    return [
        ("magic byte", b"\x07garbage that is not a candle"),
        ("empty", b""),
        ("high", Candle(c.symbol, c.timeframe, c.open_time + 300_000, c.open, c.low * 0.5, c.low, c.close, c.volume)),
        ("not finite", Candle(c.symbol, c.timeframe, c.open_time + 300_000, float("nan"), c.high, c.low, c.close, c.volume)),
        ("positive", Candle(c.symbol, c.timeframe, c.open_time + 300_000, -1.0, c.high, -2.0, c.close, c.volume)),
        ("volume", Candle(c.symbol, c.timeframe, c.open_time + 300_000, c.open, c.high, c.low, c.close, -5.0)),
        ("is not after", c),  # a duplicate of a candle already processed
        ("1m candle on the 5m", Candle(c.symbol, "1m", c.open_time + 60_000, c.open, c.high, c.low, c.close, c.volume)),
        # 2100-01-01: accepted, it would move the series past every real candle to come
        ("in the future", Candle(c.symbol, c.timeframe, 4_102_444_800_000, c.open, c.high, c.low, c.close, c.volume)),
        # a valid next candle keyed by something else, so on another partition than its series
        ("belongs on partition", (WRONG_KEY, Candle(c.symbol, c.timeframe, c.open_time + 300_000, c.open, c.high, c.low,
                                                    c.close, c.volume))),
    ]


async def publish(settings, candles, extra=(), batch_every: int = 0):
    async with CandleProducer(settings) as producer:
        if batch_every:
            for i in range(0, len(candles), batch_every):
                await producer.send_batch(candles[i:i + batch_every])
        else:
            for candle in candles:
                await producer.send(candle)
        await producer.flush()
        for _, item in extra:  # all onto the 5m topic, whatever the candle says, keyed b"bad" unless given a key
            key, item = item if isinstance(item, tuple) else (b"bad", item)
            value = item if isinstance(item, bytes) else producer.codec.encode("Candle", item.to_record())
            await producer.send_raw(settings.candle_topic("5m"), key, value)


def all_out(n_predictions: int, n_dead: int, threshold: float):
    """Condition: every prediction, the signals they imply (ready and confident), and the dead letters are in."""

    def done(r) -> bool:
        implied = sum(1 for p in r["predictions"] if p["ready"] and p["confidence"] >= threshold)
        return len(r["predictions"]) >= n_predictions and len(r["signals"]) >= implied and len(r["dead-letters"]) >= n_dead

    return done


async def collect(settings, until, timeout_s: float = 120.0) -> dict[str, list]:
    """Read predictions, signals and dead-letters until ``until(records)`` holds (or time runs out)."""
    topics = {settings.topic(n): n for n in ("predictions", "signals", "dead-letters")}
    records: dict[str, list] = {n: [] for n in topics.values()}
    deadline = time.monotonic() + timeout_s

    async def consume():
        async for topic, record, _ in read_topic(settings, list(topics)):
            records[topics[topic]].append(record)
            if until(records):
                return

    try:
        await asyncio.wait_for(consume(), max(1.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    return records


def test_valid_candles_predicted_once_invalid_dead_lettered(app_settings, worker_factory):
    settings = app_settings()
    worker = worker_factory(settings)
    candles = real_candles(150)  # 150 candles of each bundled symbol, interleaved by time
    bad = invalid_messages(candles)

    asyncio.run(publish(settings, candles, bad))
    got = asyncio.run(collect(settings, all_out(len(candles), len(bad), settings.signal_threshold)))

    model_version = worker.health()["model_version"]
    ids = [p["id"] for p in got["predictions"]]
    assert len(ids) == len(candles), "every valid candle yields exactly one prediction"
    assert set(ids) == {prediction_id(c.symbol, c.timeframe, c.open_time, model_version) for c in candles}
    assert all(0.0 <= p["prob_up"] <= 1.0 and p["model_version"] == model_version for p in got["predictions"])
    assert any(p["ready"] for p in got["predictions"]) and not all(p["ready"] for p in got["predictions"])
    for s in got["signals"]:
        assert s["confidence"] >= settings.signal_threshold and s["prediction_id"] in set(ids)

    dead = got["dead-letters"]
    assert len(dead) == len(bad)
    reasons = [d["reason"] for d in dead]
    for fragment, _ in bad:
        assert any(fragment in r for r in reasons), f"no dead letter mentions {fragment!r}: {reasons}"
    assert all(d["source_topic"] == settings.candle_topic("5m") and d["offset"] >= 0 for d in dead)

    # Still running: a fresh valid candle after all the bad ones is predicted too.
    last = candles[-1]
    later = Candle(last.symbol, "5m", last.open_time + 600_000, last.close, last.close * 1.01, last.close * 0.99, last.close, 10.0)
    asyncio.run(publish(settings, [later]))
    more = asyncio.run(collect(settings, all_out(len(candles) + 1, len(bad), settings.signal_threshold)))
    assert prediction_id(later.symbol, "5m", later.open_time, model_version) in {p["id"] for p in more["predictions"]}
    health = worker.health()
    assert health["ready"] and health["stats"]["dead_letters"] == len(bad)
    assert worker.process.poll() is None

    # The web views answer from the worker's tables.
    latest = worker.get("/signals/latest")["signals"]
    assert {s["symbol"] for s in latest} <= {c.symbol for c in candles}
    assert all(s["id"] in {x["id"] for x in more["signals"]} for s in latest)
    features = worker.get(f"/features/{later.symbol}/5m")
    assert features["last_open_time"] == later.open_time and features["ready"]
    assert features["features"]["close"] == pytest.approx(later.close, rel=1e-6)
    assert worker.get("/features/NOPE/5m", expect=404)["error"]


def test_same_candles_in_a_fresh_app_give_identical_predictions(app_settings, worker_factory):
    candles = real_candles(80)
    runs = []
    for batch_every in (0, 37):  # the second run sends CandleBatch messages: same result expected
        settings = app_settings()
        worker_factory(settings)
        asyncio.run(publish(settings, candles, batch_every=batch_every))
        got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
        runs.append(({p["id"]: p for p in got["predictions"]}, {s["id"] for s in got["signals"]}))
    (first, first_signals), (second, second_signals) = runs
    assert len(first) == len(candles) and first.keys() == second.keys()
    assert first_signals and first_signals == second_signals
    for pid, p in first.items():
        q = second[pid]
        assert p["prob_up"] == q["prob_up"] and p["direction"] == q["direction"]
        assert all((a == b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(p["features"], q["features"]))
