"""Serving within a latency budget (streams/serving_chain.py): the full model unless a batch's estimated cost
exceeds the budget, then its distilled student; the predictions name the model that served them, the chain
counts both, a step member's per-series state comes out as a run without the student gives it, and a
replay (no chain) always scores with the full model."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from core.candle import Candle
from core.candle_files import read_candle_file
from models.base import SingleHorizonModel
from models.loading import load_model
from candleflow.replay import ServingTimeline
from streams.scoring import step_members
from streams.series import Position, SeriesState
from streams.series_book import SeriesBook
from streams.serving_chain import CostEstimate, ServingChain
from streams.step import Models, StepConfig, process_batch
from tests.conftest import CANDLES, HELD_OUT, tiny_sequence_bundle
from training.train import train_horizons_on_series

CONFIG = StepConfig(threshold=0.3)
STEP_MS = 300_000


class Full(SingleHorizonModel):
    """A full model whose cost is known: ``ms_per_row`` of sleep per row."""

    horizon = 1

    def __init__(self, version: str = "full", ms_per_row: float = 0.0, student=None) -> None:
        self._version, self.ms_per_row, self.student = version, ms_per_row, student

    version = property(lambda self: self._version)

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        time.sleep(self.ms_per_row * len(rows) / 1000)
        return np.full(len(rows), 0.7)


class Student(SingleHorizonModel):
    version, horizon = "student", 1

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return np.full(len(rows), 0.6)


def sourced(symbol: str, i: int) -> tuple:
    return Candle(symbol, "5m", STEP_MS * i, 1.0, 1.1, 0.9, 1.0 + i / 100, 2.0), None, Position("c", 0, i)


# -- the chain's choice (pure logic) ------------------------------------------------------------------------

def test_the_student_serves_only_when_the_estimate_exceeds_the_budget():
    full = Full(student=Student())
    chain = ServingChain(budget_ms=50)
    assert chain.route([full] * 5000) == ([full] * 5000, {})  # nothing measured yet: the full model serves
    chain.observe([(full, 100, 0.010)], {})  # 100 us a row
    assert chain.route([full] * 400) == ([full] * 400, {})  # 40 ms: within 50
    serving, routed = chain.route([full] * 600)  # 60 ms: over
    assert serving == [full.student] * 600 and routed == {id(full.student): full}
    chain.observe([(full.student, 600, 0.001)], routed)
    snap = chain.snapshot()
    assert snap["served"] == {"full": 100, "student": 600} and snap["over_budget_batches"] == 1
    assert snap["budget_ms"] == 50 and snap["estimate"]["full"]["rows_within_budget"] == 500
    assert snap["estimate"]["full"]["us_per_row_batch_1"] == pytest.approx(100)


def test_the_estimate_is_the_line_through_recent_batches_else_the_teachers_shape_scaled():
    # The distillation report's shape: 200 us for one row, 20 us a row at batch 1,000 (a call's overhead).
    cost = CostEstimate.from_report({"teacher_us_per_row": {"batch_1": 200.0, "batch_1000": 20.0}})
    assert cost.prior[0] == pytest.approx(180e-6, rel=0.01) and cost.prior[1] == pytest.approx(20e-6, rel=0.01)
    cost.add(1, 400e-6)  # one size seen: the shape, this host twice as slow as the report's
    assert cost.fit == "prior" and cost.seconds(1000) == pytest.approx(2 * 20e-3, rel=1e-6)  # the report: 20 ms
    for _ in range(20):  # sizes that vary: this host's own line (its GPU turned slow: 1 ms a call, 50 us a row)
        for n in (1, 10, 100, 500):
            cost.add(n, 1e-3 + 50e-6 * n)
    assert cost.fit == "line" and cost.seconds(2000) == pytest.approx(1e-3 + 0.1, rel=0.01)
    assert cost.rows_within(0.051) == pytest.approx(1000, abs=10)
    assert CostEstimate.from_report(None).prior == CostEstimate.from_report({"teacher_us_per_row": {}}).prior == (0.0, 1.0)


def test_without_a_student_the_full_model_serves_over_budget_and_says_so_once(caplog):
    full = Full()
    chain = ServingChain(budget_ms=1)
    chain.observe([(full, 10, 0.010)], {})
    with caplog.at_level(logging.WARNING, logger="streams.serving_chain"):
        for _ in range(3):
            assert chain.route([full] * 10) == ([full] * 10, {})
    assert len([r for r in caplog.records if "no distilled student" in r.message]) == 1
    assert chain.snapshot()["fallback_batches"] == 3


def test_off_without_a_budget_and_split_batches_estimate_each_model():
    full = Full(student=Student())
    off = ServingChain(budget_ms=0)
    off.observe([(full, 10, 10.0)], {})
    assert off.route([full] * 10) == ([full] * 10, {}) and off.snapshot()["budget_ms"] is None
    candidate = Full("candidate", student=Student())
    chain = ServingChain(budget_ms=10)
    chain.observe([(full, 10, 0.001), (candidate, 10, 0.002)], {})  # 100 and 200 us a row
    assert chain.route([full, candidate] * 20)[1] == {}  # 20 rows of each: 2 + 4 ms
    serving, routed = chain.route([full, candidate] * 40)  # 4 + 8 = 12 ms > 10
    assert serving == [full.student, candidate.student] * 40 and set(routed.values()) == {full, candidate}


# -- through the batch step ------------------------------------------------------------------------------

def test_in_the_step_predictions_name_the_model_that_served_and_the_chain_counts_them():
    full = Full(ms_per_row=1.0, student=Student())  # ~1 ms a row
    chain = ServingChain(budget_ms=20)
    book, out = SeriesBook(), []
    sizes = [5, 5, 40, 5]  # the 40-candle batch is estimated at ~40 ms: the student serves it
    i = 0
    for size in sizes:
        batch = [sourced(f"S{k}", i) for k in range(size)]
        i += 1
        out.append(process_batch(batch, book, Models(full, chain=chain), CONFIG).predictions)
    assert [{p["model_version"] for p in preds} for preds in out] == [{"full"}, {"full"}, {"student"}, {"full"}]
    assert {p["prob_up"] for p in out[2]} == {0.6} and {p["prob_up"] for p in out[3]} == {0.7}
    assert out[2][0]["id"] != out[0][0]["id"]  # ids carry the version that served
    assert chain.snapshot()["served"] == {"full": 15, "student": 40}


def test_a_replay_scores_with_the_full_model_whatever_the_budget():
    full = Full(ms_per_row=1.0, student=Student())
    models = ServingTimeline(full, None, shadow=False).at(None)  # what the replay steps with
    assert models.chain is None
    result = process_batch([sourced(f"S{k}", 0) for k in range(40)], SeriesBook(), models, CONFIG)
    assert {p["model_version"] for p in result.predictions} == {"full"}
    chain = ServingChain(budget_ms=1)  # told to serve as a worker does: then the budget applies
    assert ServingTimeline(full, None, shadow=False, chain=chain).at(None).chain is chain


# -- a step member's state across a student-served batch -----------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny bundle (LightGBM, 5 rounds, and a Mamba member in step mode) with a student in ``student/``."""
    out = tmp_path_factory.mktemp("chain") / "bundle"
    candles = tiny_sequence_bundle(out)
    train_horizons_on_series([candles], out / "student", progress=False, num_boost_round=2)  # any LightGBM bundle
    return load_model(out)


@pytest.fixture(scope="module")
def stream():
    series = [read_candle_file(f).candles[-150:] for f in (CANDLES / "LTC-BTC_5m.csv.gz", HELD_OUT / "ETC-BTC_5m.csv.gz")]
    return [(c, None, Position("c", k, i)) for i in range(150) for k, c in enumerate(s[i] for s in series)]


class Forced(ServingChain):
    """The chain with its choice forced: the student serves the batches numbered in ``student_batches``."""

    def __init__(self, student_batches: set[int]) -> None:
        super().__init__(budget_ms=1)
        self.student_batches, self.batch = student_batches, -1

    def route(self, serving):
        self.batch += 1
        if self.batch not in self.student_batches:
            return serving, {}
        full = serving[0]
        return [full.student] * len(serving), {id(full.student): full}


def probabilities(predictions):
    return np.array([[h["prob_up"] for h in p["horizons"]] for p in predictions])


def run(stream, bundle, chain=None, size=10, book=None):
    book = book or SeriesBook()
    out = []
    for i in range(0, len(stream), size):
        out.append(process_batch(stream[i:i + size], book, Models(bundle, chain=chain), CONFIG).predictions)
    return out, book


def test_the_student_is_attached_from_the_bundle_directory(bundle):
    assert bundle.student is not None and bundle.student.horizons == bundle.horizons
    assert bundle.student.version != bundle.version and not step_members(bundle.student)


def test_after_a_student_served_batch_the_full_model_scores_as_without_it(bundle, stream):
    reference, _ = run(stream, bundle)
    chain = Forced({20, 21, 25})  # two batches in a row (5 candles of each series each, 100 in), and one more
    served, book = run(stream, bundle, chain)
    for n, (mine, theirs) in enumerate(zip(served, reference)):
        versions = {p["model_version"] for p in mine}
        if n in chain.student_batches:
            assert versions == {bundle.student.version} and all("mamba" not in p["model_versions"] for p in mine)
        else:  # the Mamba state caught up on the candles the student served: the same P(up), every horizon
            assert versions == {bundle.version}
            np.testing.assert_allclose(probabilities(mine), probabilities(theirs), rtol=0, atol=1e-6)
    assert chain.snapshot()["served"] == {"full": len(stream) - 30, "student": 30}
    # every lag caught up, its time kept out of the estimate
    assert not book.sequences.lags and book.sequences.warm_up_seconds > 0


def test_a_lagging_state_is_not_stored_and_a_restart_starts_it_from_the_window(bundle, stream):
    [mamba] = step_members(bundle)
    key = "LTC-BTC|5m"
    _, book = run(stream[:100], bundle, Forced({9}))  # the last of 10 batches: served by the student
    assert book.sequences.lags[key] == {mamba.model.version: 5} and book.sequences.state(key, mamba.model.version) is not None
    stored = SeriesState.from_bytes(book.states_bytes([key])[0])
    assert mamba.model.version not in stored.sequences  # a restart does not take a stale state for a current one
    assert mamba.model.version not in book.state(key).sequences
    restored = SeriesBook()
    restored.load(key, stored)
    assert not restored.sequences.lags
