"""The batch step's redelivery rules: a message processed once, wherever its copies fall."""

from __future__ import annotations

import numpy as np

from core.candle import Candle
from core.errors import OutOfOrder
from streams.series import Position
from streams.series_book import SeriesBook
from streams.step import Models, StepConfig, process_batch
from models.base import SingleHorizonModel

STEP_MS = 300_000


class Model(SingleHorizonModel):
    version, horizon = "m1", 1

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return np.full(len(rows), 0.7)


def sourced(symbol: str, i: int, offset: int, partition: int = 0):
    return Candle(symbol, "5m", STEP_MS * i, 1.0, 1.1, 0.9, 1.0 + i / 100, 2.0), None, Position("c", partition, offset)


def step(batch, book):
    return process_batch(batch, book, Models(Model()), StepConfig(threshold=0.5))


def test_a_partition_read_again_inside_one_batch_is_scored_once():
    # Faust resets a partition to its committed offset when the subscription is renewed: one take of
    # events then holds offsets 0..5 and, after them, 0..5 again.
    book = SeriesBook()
    first = [sourced("A", i, offset=i) for i in range(6)]
    result = step(first + first, book)
    assert [p["open_time"] for p in result.predictions] == [STEP_MS * i for i in range(6)]
    assert result.redelivered == list(range(6, 12)) and result.rejected == []
    assert book.last_open_time("A|5m") == STEP_MS * 5


def test_copies_of_two_series_interleaved_are_each_skipped_once():
    book = SeriesBook()
    batch = [sourced("A", 0, 0), sourced("B", 0, 1), sourced("A", 1, 2), sourced("A", 0, 0), sourced("B", 0, 1)]
    result = step(batch, book)
    assert len(result.predictions) == 3 and result.redelivered == [3, 4] and result.rejected == []


def test_an_older_candle_at_a_new_offset_is_still_refused():
    # Not a copy: another message (a later offset) carrying a candle the series is past.
    book = SeriesBook()
    result = step([sourced("A", 0, 0), sourced("A", 1, 1), sourced("A", 1, 2)], book)
    assert len(result.predictions) == 2 and result.redelivered == []
    assert [i for i, _ in result.rejected] == [2] and isinstance(result.rejected[0][1], OutOfOrder)


def test_a_refused_message_delivered_twice_is_refused_once():
    book = SeriesBook()
    step([sourced("A", 0, 0), sourced("A", 1, 1)], book)
    stale = sourced("A", 0, 2)  # an old candle at a new offset, read twice
    result = step([stale, stale], book)
    assert [i for i, _ in result.rejected] == [0] and result.redelivered == [1]


class Bearish(SingleHorizonModel):
    version, horizon = "m2", 1

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return np.full(len(rows), 0.2)


def test_a_shadow_candidate_is_labelled_on_every_candle_and_never_traded():
    from learning.learner import OutcomeLearner

    book, learner = SeriesBook(), OutcomeLearner()
    batch = [sourced(s, i, offset=2 * i + (s == "B")) for i in range(40) for s in ("A", "B")]
    result = process_batch(batch, book, Models(Model(), Bearish(), 0.5, shadow=True),
                           StepConfig(threshold=0.3, outcome_loop=True), lambda i: ("p0", learner))
    assert {p["model_version"] for p in result.predictions} == {"m1"} and len(result.predictions) == 80
    assert result.signals and {s["model_version"] for s in result.signals} == {"m1"}
    by_version = {}
    for o in result.outcomes:
        by_version.setdefault(o["model_version"], set()).add((o["symbol"], o["open_time"]))
    assert by_version["m1"] == by_version["m2"] and len(by_version["m1"]) == 78  # the same candles, paired
    assert result.shadow_version == "m2"
    assert learner.online.n_learned + learner.queued == 78  # the online model learns each candle once


def test_split_mode_serves_the_candidate_to_its_share_instead():
    book = SeriesBook()
    batch = [sourced(f"S{k}", 0, offset=k) for k in range(40)]
    result = process_batch(batch, book, Models(Model(), Bearish(), 0.5), StepConfig(threshold=0.3))
    versions = {p["model_version"] for p in result.predictions}
    assert versions == {"m1", "m2"} and result.shadow_version is None
