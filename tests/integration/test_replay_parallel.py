"""A replay on several processes gives what one process gives, record for record, and fails loudly."""

from __future__ import annotations

import asyncio

import pytest

from models.loading import load_model
from core.errors import CandleflowError, ConfigError
from candleflow.replay import replay
from candleflow.replay.output import JsonlFile, KeptRecords
from candleflow.replay.parallel import ReplayOutputs, default_workers, estimated_candles, replay_in_processes, topic_partitions
from tests.integration.test_candle_pipeline import publish
from tests.integration.test_hot_reload import many_symbols

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def universe():
    return many_symbols(8, 70)  # 8 symbols over the 4 partitions, past warm-up, the online member on


def test_processes_replay_what_one_process_replays(app_settings, universe, tmp_path):
    settings = app_settings()
    topic = settings.candle_topic("5m")
    asyncio.run(publish(settings, universe, batch_every=16))
    model = load_model(settings.model_dir)
    assert topic_partitions(settings, topic) == [0, 1, 2, 3]
    estimate = asyncio.run(estimated_candles(settings, topic))  # what candleflow replay sizes its processes by
    assert 0.7 * len(universe) <= estimate <= 1.5 * len(universe) and default_workers(4, estimate) == 1

    one = asyncio.run(replay(settings, model, topic, from_offset=0, progress=False, output=JsonlFile(tmp_path / "one.jsonl")))
    for workers in (2, 3):  # 3: two partitions on one process, one on each of the others
        out = tmp_path / f"{workers}.jsonl"
        many = replay_in_processes(settings, settings.model_dir, topic, workers=workers, progress=False,
                                   outputs=ReplayOutputs(out=out), from_offset=0)
        assert (many.candles, many.predicted, many.signalled) == (one.candles, one.predicted, one.signalled) == \
            (len(universe), len(universe), many.signalled)
        assert out.read_bytes() == (tmp_path / "one.jsonl").read_bytes()
        assert not [p for p in tmp_path.iterdir() if ".part" in p.name], "parts are merged and removed"

    # Warmed up on the messages before a range: the same as in one process, kept for the caller.
    kept_one = asyncio.run(replay(settings, model, topic, from_offset=3, progress=False, output=KeptRecords()))
    kept_many = replay_in_processes(settings, settings.model_dir, topic, workers=2, progress=False,
                                    outputs=ReplayOutputs(keep=True), from_offset=3)
    assert kept_many.warmup_candles == kept_one.warmup_candles > 0
    by_id = {p["id"]: p for p in kept_one.predictions}
    assert sorted(by_id) == sorted(p["id"] for p in kept_many.predictions)
    assert all(p["prob_up"] == by_id[p["id"]]["prob_up"] for p in kept_many.predictions)
    assert sorted(s["id"] for s in kept_many.signals) == sorted(s["id"] for s in kept_one.signals)


def test_a_failing_process_fails_the_replay_with_its_reason(app_settings, universe, tmp_path):
    settings = app_settings()
    topic = settings.candle_topic("5m")
    asyncio.run(publish(settings, universe[:40]))
    with pytest.raises(CandleflowError, match="failed: .*model"):
        replay_in_processes(settings, tmp_path / "no-model-here", topic, workers=2, progress=False,
                            outputs=ReplayOutputs(out=tmp_path / "out.jsonl"), from_offset=0)
    assert list(tmp_path.iterdir()) == [], "no output, no parts left behind"
    with pytest.raises(ConfigError, match="does not exist"):
        topic_partitions(settings, settings.topic("no-such-topic"))
