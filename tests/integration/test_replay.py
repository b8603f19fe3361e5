"""Replay determinism: two replays of a range are identical, and equal what the live worker produced."""

from __future__ import annotations

import asyncio
import json

import pytest

from models.direction import DirectionModel
from candleflow.replay import replay
from candleflow.replay.output import JsonlFile
from tests.waiting import wait_for
from tests.integration.test_candle_pipeline import all_out, collect, publish, real_candles
from tests.integration.test_hot_reload import second_model  # noqa: F401  (a fixture: another real model)

pytestmark = pytest.mark.integration


def same(a: dict, b: dict) -> bool:
    keys = ("id", "prob_up", "direction", "confidence", "ready", "model_version", "candle_produced_at")
    features_equal = all(x == y or (x != x and y != y) for x, y in zip(a["features"], b["features"]))
    return all(a[k] == b[k] for k in keys) and features_equal


def test_replays_are_identical_and_equal_the_live_run(app_settings, worker_factory, tmp_path):
    settings = app_settings()
    worker_factory(settings)
    candles = real_candles(120)
    asyncio.run(publish(settings, candles, batch_every=25))
    live = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    assert len(live["predictions"]) == len(candles)
    live_by_id = {p["id"]: p for p in live["predictions"]}

    model = DirectionModel.load(settings.model_dir)
    topic = settings.candle_topic("5m")
    first = asyncio.run(replay(settings, model, topic, from_offset=0, progress=False))
    files = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    for path, run_lines in zip(files, (7, 100_000)):  # sorted runs spilled and merged, or one in memory
        written = asyncio.run(replay(settings, model, topic, from_offset=0, progress=False,
                                     output=JsonlFile(path, run_lines=run_lines)))
        assert written.predicted == len(candles) and written.signalled == len(first.signals)
    assert files[0].read_bytes() == files[1].read_bytes()
    in_file = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [r["id"] for r in in_file if r["kind"] == "prediction"] == \
        [p["id"] for p in sorted(first.predictions, key=lambda p: (p["open_time"], p["symbol"]))]

    assert len(first.predictions) == len(candles) and first.warmup_candles == 0
    assert all(same(p, live_by_id[p["id"]]) for p in first.predictions)
    assert {s["id"] for s in first.signals} == {s["id"] for s in live["signals"]}

    # From the middle of every partition, warmed up on what came before: still the live values.
    middle = asyncio.run(replay(settings, model, topic, from_offset=2, progress=False))
    assert 0 < len(middle.predictions) < len(candles) and middle.warmup_candles > 0
    assert all(same(p, live_by_id[p["id"]]) for p in middle.predictions)
    cold = asyncio.run(replay(settings, model, topic, from_offset=2, warmup=False, progress=False))
    assert {p["id"] for p in cold.predictions} == {p["id"] for p in middle.predictions}
    assert any(not same(p, live_by_id[p["id"]]) for p in cold.predictions), "a cold start must differ while warming up"


def test_a_replay_equals_the_live_run_with_the_online_member_in(app_settings, worker_factory):
    """Long enough for each partition's River model to earn a weight (streams/online_member.py): the live
    worker took the candles in batches of its own, the replay in others; the predictions are the same."""
    settings = app_settings()
    worker = worker_factory(settings)
    candles = real_candles(520)
    asyncio.run(publish(settings, candles, batch_every=7))
    live = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold), timeout_s=240))
    live_by_id = {p["id"]: p for p in live["predictions"]}
    assert len(live_by_id) == len(candles)
    blended = [p for p in live["predictions"] if "river" in p["model_versions"]]
    assert len(blended) > 50, "the online member never got a weight"
    # /models reads the learners as the last checkpoint wrote them
    assert wait_for(lambda: any(m["weight"] > 0 and m["judged"] >= 100 for m in worker.get("/models")["online"]["members"]))

    model = DirectionModel.load(settings.model_dir)
    replayed = asyncio.run(replay(settings, model, settings.candle_topic("5m"), from_offset=0, progress=False))
    assert len(replayed.predictions) == len(candles)
    assert all(same(p, live_by_id[p["id"]]) for p in replayed.predictions)
    assert {s["id"] for s in replayed.signals} == {s["id"] for s in live["signals"]}


def test_a_replay_equals_the_live_run_with_the_default_two_member_bundle(app_settings, worker_factory, default_bundle):
    """The model `make demo` trains, LightGBM per horizon and the Mamba member in step mode: the live worker
    kept each series' recurrent state in its checkpointed series, the replay in its own book, batches cut
    differently; the same ids, directions and probabilities (to float32 sums over other batch shapes)."""
    from models.loading import load_model

    settings = app_settings(model_dir=default_bundle)
    worker_factory(settings)
    candles = real_candles(120)
    asyncio.run(publish(settings, candles, batch_every=25))
    live = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    live_by_id = {p["id"]: p for p in live["predictions"]}
    assert len(live_by_id) == len(candles)
    model = load_model(default_bundle)
    assert [m.name for m in model.members] == ["lgbm", "mamba"]
    assert all(set(p["model_versions"]) >= {"lgbm", "mamba"} for p in live["predictions"] if p["ready"])
    replayed = asyncio.run(replay(settings, model, settings.candle_topic("5m"), from_offset=0, progress=False))
    assert len(replayed.predictions) == len(candles)
    for p in replayed.predictions:
        q = live_by_id[p["id"]]
        assert (p["direction"], p["ready"], p["model_version"]) == (q["direction"], q["ready"], q["model_version"])
        assert p["prob_up"] == pytest.approx(q["prob_up"], abs=1e-6) and p["confidence"] == pytest.approx(q["confidence"], abs=1e-6)


async def read_until(settings, topics: list[str], n: int, timeout_s: float = 60.0) -> list[dict]:
    from kafka_io.consumer import read_topic

    records: list[dict] = []

    async def consume() -> None:
        async for _, record, _ in read_topic(settings, topics):
            records.append(record)
            if len(records) >= n:
                return

    await asyncio.wait_for(consume(), timeout_s)
    return records


def test_cli_produce_tail_with_filters_and_replay_to_a_file(app_settings, worker_factory, tmp_path):
    """The commands a person types: produce a real file, tail signals with filters, replay into a file."""
    import json
    import os
    import subprocess
    import sys

    from streams.worker_process import settings_env

    settings = app_settings()
    worker_factory(settings)
    env = {**os.environ, **settings_env(settings)}
    source = tmp_path / "ETH-BTC_5m.csv"
    import gzip

    from tests.conftest import CANDLES

    rows = gzip.decompress((CANDLES / "ETH-BTC_5m.csv.gz").read_bytes()).decode().splitlines()[:201]
    source.write_text("\n".join(rows) + "\n")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "candleflow", *args], env=env, capture_output=True, text=True, timeout=180)

    produced = cli("produce", str(source), "--rate", "2000")
    assert produced.returncode == 0 and "published 200 candles" in produced.stderr
    asyncio.run(collect(settings, all_out(200, 0, settings.signal_threshold)))
    everything = [json.loads(line) for line in cli("tail", "signals", "--idle-timeout", "3").stdout.splitlines()]
    wanted = [s for s in everything if s["direction"] == "UP" and s["confidence"] >= 0.1]
    tailed = cli("tail", "signals", "--idle-timeout", "3", "--direction", "up", "--min-confidence", "0.1", "--symbol", "ETH-BTC")
    lines = [json.loads(line) for line in tailed.stdout.splitlines()]
    assert tailed.returncode == 0 and wanted and [s["id"] for s in lines] == [s["id"] for s in wanted]

    out = tmp_path / "replay.jsonl"
    replayed = cli("replay", "--topic", "candles.5m", "--from-offset", "0", "--out", str(out), "--to-topics", "backtest")
    assert replayed.returncode == 0 and "replayed 200 candles" in replayed.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["kind"] for r in written].count("prediction") == 200
    # The same records, published as Avro while the replay ran.
    published = asyncio.run(read_until(settings, ["backtest.predictions", "backtest.signals"], len(written)))
    assert {r["id"] for r in published} == {r["id"] for r in written}
    missing = cli("replay", "--topic", "candles.5m", "--from-offset", "0", "--out", str(tmp_path / "no" / "such.jsonl"))
    assert missing.returncode != 0 and "is not a directory" in missing.stderr and "Traceback" not in missing.stderr


def test_training_data_from_a_candle_topic_equals_the_files(app_settings, tmp_path):
    """A model trained from the topic is the model trained from the files that were published to it."""
    from training.topic_data import series_from_topic
    from training.train import train_on_series

    settings = app_settings()
    candles = real_candles(400)
    asyncio.run(publish(settings, candles, extra=[("bad", b"\x00garbage")], batch_every=50))
    series, invalid = asyncio.run(series_from_topic(settings, settings.candle_topic("5m")))
    expected = sorted({c.symbol for c in candles})
    assert invalid == 1 and [s[0].symbol for s in series] == expected
    assert [c for s in series for c in s] == sorted(candles, key=lambda c: (c.symbol, c.open_time))
    by_symbol = [[c for c in candles if c.symbol == s] for s in expected]
    a = train_on_series(series, tmp_path / "from-topic", progress=False, num_boost_round=10)
    b = train_on_series(by_symbol, tmp_path / "from-files", progress=False, num_boost_round=10)
    assert a.version == b.version


@pytest.mark.parametrize("ab_mode", ["split", "shadow"])
def test_a_replay_equals_the_live_run_under_an_ab_candidate(app_settings, worker_factory, second_model, ab_mode):
    """The candidate deployed on model-events before the candles: the replay follows the same deployment
    (DeploymentTimeline), so each symbol gets the version that served it live; in shadow, the candidate's
    outcomes sit beside the active model's, and the published records are the active model's alone."""
    from models.loading import load_model
    from tests.integration.test_hot_reload import deploy_candidate, many_symbols

    settings = app_settings(ab_mode=ab_mode)
    worker = worker_factory(settings)
    active = worker.get("/models")["active"]["version"]
    candidate = load_model(second_model).version
    deploy_candidate(settings, worker, candidate, second_model, 0.5)
    candles = many_symbols(8, 50, split=(active, candidate, 0.5))
    asyncio.run(publish(settings, candles, batch_every=30))
    live = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    live_by_id = {p["id"]: p for p in live["predictions"]}
    assert len(live_by_id) == len(candles)
    versions = {p["model_version"] for p in live["predictions"]}
    assert versions == ({active, candidate} if ab_mode == "split" else {active})

    start = DirectionModel.load(settings.model_dir)  # what the worker started with; the candidate comes from the topic
    replayed = asyncio.run(replay(settings, start, settings.candle_topic("5m"), from_offset=0, progress=False))
    assert replayed.deployments == 1 and len(replayed.predictions) == len(candles)
    assert all(same(p, live_by_id[p["id"]]) for p in replayed.predictions)
    assert {s["id"] for s in replayed.signals} == {s["id"] for s in live["signals"]}
    # Pinned to the starting model, a split replay is a what-if: every symbol on the active version.
    pinned = asyncio.run(replay(settings, start, settings.candle_topic("5m"), from_offset=0, progress=False,
                                follow_deployments=False))
    assert {p["model_version"] for p in pinned.predictions} == {active}
