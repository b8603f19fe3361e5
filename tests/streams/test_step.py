"""The batch step's redelivery rules: a message processed once, wherever its copies fall."""

from __future__ import annotations

import numpy as np

from streams.candle import Candle
from streams.errors import OutOfOrder
from streams.series import Position
from streams.series_book import SeriesBook
from streams.step import Models, StepConfig, process_batch

STEP_MS = 300_000


class Model:
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
