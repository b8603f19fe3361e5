"""Replay ranges by candle time on the real broker: inside, spanning, empty, past the end, before the start.

The candles are real 2018 candles produced today, so their message times say nothing of their own time:
a range of candle times must still pick exactly the candles that opened in it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from models.direction import DirectionModel
from candleflow.replay import replay
from core.timestamps import format_time
from tests.integration.test_candle_pipeline import publish, real_candles
from tests.integration.test_replay import same

pytestmark = pytest.mark.integration

FIVE_MINUTES = 300_000


@pytest.fixture
def produced(app_settings):
    """A topic holding 2 x 120 real candles, and the full replay of it (the reference)."""
    settings = app_settings()
    candles = real_candles(120)
    asyncio.run(publish(settings, candles, batch_every=25))
    model = DirectionModel.load(settings.model_dir)
    full = asyncio.run(replay(settings, model, settings.candle_topic("5m"), from_offset=0, progress=False))
    assert len(full.predictions) == len(candles)
    return settings, model, candles, {p["id"]: p for p in full.predictions}


def run(settings, model, **kwargs):
    return asyncio.run(replay(settings, model, settings.candle_topic("5m"), progress=False, **kwargs))


def test_a_range_inside_the_topic_is_exactly_its_candles(produced):
    settings, model, candles, reference = produced
    times = sorted({c.open_time for c in candles})
    start, end = times[40], times[80]
    inside = run(settings, model, from_time=start, to_time=end)
    wanted = [c for c in candles if start <= c.open_time < end]
    assert inside.candles == len(wanted) == 80 and len(inside.predictions) == 80
    assert sorted((p["symbol"], p["open_time"]) for p in inside.predictions) == sorted((c.symbol, c.open_time) for c in wanted)
    assert inside.warmup_candles == len(candles) - 80  # before the range (warm-up) and after it (read to the end)
    assert all(same(p, reference[p["id"]]) for p in inside.predictions), "warmed up: the values of a full run"
    assert inside.notes() == []
    # Cold: the same candles, the series started empty at the range (so values differ while warming up).
    cold = run(settings, model, from_time=start, to_time=end, warmup=False)
    assert {p["id"] for p in cold.predictions} == {p["id"] for p in inside.predictions}
    assert any(not same(p, reference[p["id"]]) for p in cold.predictions)


def test_a_range_spanning_the_topic_says_where_it_really_starts(produced):
    settings, model, candles, reference = produced
    first, last = min(c.open_time for c in candles), max(c.open_time for c in candles)
    spanning = run(settings, model, from_time=first - 86_400_000, to_time=last + 86_400_000)
    assert spanning.candles == len(candles) and {p["id"] for p in spanning.predictions} == set(reference)
    notes = " ".join(spanning.notes())
    assert f"really starts at {format_time(first)}" in notes and f"last candle ({format_time(last)})" in notes


@pytest.mark.parametrize("where", ["empty", "past-the-end", "before-the-start"])
def test_a_range_without_candles_replays_nothing_and_says_so(produced, where):
    settings, model, candles, _ = produced
    first, last = min(c.open_time for c in candles), max(c.open_time for c in candles)
    start, end = {"empty": (first + 60 * FIVE_MINUTES + 1, first + 61 * FIVE_MINUTES - 1),  # between two candles
                  "past-the-end": (last + 3_600_000, None),
                  "before-the-start": (first - 86_400_000, first - 3_600_000)}[where]
    for warmup in (True, False):
        nothing = run(settings, model, from_time=start, to_time=end, warmup=warmup)
        assert nothing.candles == 0 and nothing.predictions == [] and nothing.signals == []
        if warmup:
            assert nothing.notes() == [f"nothing replayed: no candle of the topic is in the range; its candles open "
                                       f"from {format_time(first)} to {format_time(last)}"]


def test_by_message_time_a_start_in_the_future_replays_nothing(produced):
    """The old lookup fell back to offset 0 past the end, replaying everything."""
    settings, model, candles, _ = produced
    future = run(settings, model, from_time=int(time.time() * 1000) + 3_600_000, by_message_time=True)
    assert future.candles == 0 and future.warmup_candles == len(candles)
    everything = run(settings, model, from_time=int(time.time() * 1000) - 3_600_000, by_message_time=True)
    assert everything.candles == len(candles)  # produced within the last hour


def test_the_cli_replays_a_day_by_candle_time(produced, tmp_path):
    from streams.worker_process import settings_env

    settings, _, candles, _ = produced
    first = min(c.open_time for c in candles)
    day = format_time(first - first % 86_400_000)[:10]  # the UTC date of the first candle
    next_day = format_time(first - first % 86_400_000 + 86_400_000)[:10]
    on_that_day = sum(1 for c in candles if format_time(c.open_time)[:10] == day)
    env = {**os.environ, **settings_env(settings)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "candleflow", "replay", "--topic", "candles.5m", *args], env=env,
                              capture_output=True, text=True, timeout=180)

    done = cli("--from-time", day, "--to-time", next_day, "--out", str(tmp_path / "day.jsonl"))
    assert done.returncode == 0, done.stderr
    assert f"replayed {on_that_day} candles" in done.stderr
    refused = cli("--from-time", next_day, "--to-time", day)
    assert refused.returncode != 0 and "--to-time must be after --from-time" in refused.stderr
    mixed = cli("--from-offset", "0", "--to-time", day)
    assert mixed.returncode != 0 and "offsets or of times" in mixed.stderr
    bad = cli("--from-time", "yesterday")
    assert bad.returncode != 0 and "not an ISO-8601 time" in bad.stderr and "Traceback" not in bad.stderr
