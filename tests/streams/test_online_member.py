"""The River online model as an ensemble member, in the batch step with the default bundle on real candles:
no say until it has learned and been judged, a say that follows its accuracy after, and the same
predictions however the same candles were cut into batches (live and replay agree)."""

from __future__ import annotations

import pytest

from learning.learner import OutcomeLearner
from models.loading import load_model
from core.candle_files import read_candle_file
from streams.series import Position
from streams.series_book import SeriesBook
from streams.step import Models, StepConfig, process_batch
from tests.conftest import CANDLES, HELD_OUT

N = 700  # candles per symbol: the member gets a weight after ~300 outcomes


@pytest.fixture(scope="module")
def bundle(default_bundle):
    return load_model(default_bundle)


@pytest.fixture(scope="module")
def stream():
    """Three real series interleaved by candle time, two partitions, as a worker reads them."""
    files = [sorted(CANDLES.glob("*.csv.gz"))[0], *sorted(HELD_OUT.glob("*.csv.gz"))][:2]
    series = [read_candle_file(f).candles[-N:] for f in files]
    out, offsets = [], [0, 0]
    for i in range(N):
        for k, candles in enumerate(series):
            p = k % 2
            out.append((candles[i], None, Position("c", p, offsets[p])))
            offsets[p] += 1
    return out


def run(stream, bundle, cut, weight=0.5):
    """The step over ``stream`` in batches cut by ``cut(stream) -> list of batches``; a learner per partition."""
    book, learners = SeriesBook(), {0: OutcomeLearner(), 1: OutcomeLearner()}
    for learner in learners.values():
        learner.arm_models([bundle])
    predictions = []
    for batch in cut(stream):
        result = process_batch(batch, book, Models(bundle), StepConfig(0.3, outcome_loop=True, online_weight=weight),
                               lambda i, b=batch: (b[i][2].partition, learners[b[i][2].partition]))
        predictions += result.predictions
    return predictions, learners


def fixed(size):
    return lambda s: [s[i:i + size] for i in range(0, len(s), size)]


def test_the_member_has_no_say_until_it_has_learned_and_been_judged(stream, bundle):
    without, _ = run(stream, bundle, fixed(64), weight=0.0)
    with_member, learners = run(stream, bundle, fixed(64))
    early = [(a["prob_up"], b["prob_up"]) for a, b in zip(without, with_member) if "river" not in b["model_versions"]]
    assert len(early) >= 400 and all(a == b for a, b in early)
    blended = [(a, b) for a, b in zip(without, with_member) if "river" in b["model_versions"]]
    assert blended, "the online member never got a weight over 700 real candles per symbol"
    assert any(a["prob_up"] != b["prob_up"] for a, b in blended)
    assert all(a["id"] == b["id"] for a, b in zip(without, with_member))  # ids name the batch model
    for learner in learners.values():
        assert learner.online.n_learned >= 200 and learner.online.recent_accuracy is not None


@pytest.mark.parametrize("cut", [fixed(1), fixed(7), fixed(500), "by-time"])
def test_the_same_candles_cut_into_any_batches_give_the_same_predictions(stream, bundle, cut):
    reference, reference_learners = run(stream, bundle, fixed(64))
    if cut == "by-time":  # one batch per candle close, as CandleBatch messages give
        cut = fixed(2)
    predictions, learners = run(stream, bundle, cut)
    assert [(p["id"], p["direction"]) for p in predictions] == [(p["id"], p["direction"]) for p in reference]
    # The Mamba member steps in float32: another batch shape sums in another order (~1e-8 apart).
    for key in ("prob_up", "confidence"):
        assert [p[key] for p in predictions] == pytest.approx([p[key] for p in reference], abs=1e-6)
    assert sum("river" in p["model_versions"] for p in predictions) > 0
    for p in (0, 1):
        assert learners[p].online.to_bytes() == reference_learners[p].online.to_bytes()


def test_the_weight_follows_recent_accuracy():
    from learning.online import MIN_JUDGED, OnlineModel

    m = OnlineModel()
    m.n_learned = 1_000
    m.recent.extend([1, 0] * (MIN_JUDGED // 2))  # a coin flip
    assert m.member_weight(0.5, 0.6) == 0.0
    m.recent.clear()
    m.recent.extend([1, 1, 1, 0] * (MIN_JUDGED // 4))  # 0.75: better than the batch model was in training
    assert m.member_weight(0.5, 0.6) == 0.5
    m.recent.clear()
    m.recent.extend([1, 1, 0, 0, 1] * (MIN_JUDGED // 5))  # 0.6 against a reference of 0.7: half way
    assert m.member_weight(0.5, 0.7) == pytest.approx(0.25)
    assert m.member_weight(0.0, 0.7) == 0.0  # switched off
