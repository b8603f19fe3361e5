"""SeriesBook: the live series through the vectorised engine equal FeatureState, candle by candle."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from core.candle_files import read_candle_file
from features import FeatureState
from streams.series import Position, SeriesState
from streams.fold_plan import alone_above
from streams.series_book import SeriesBook
from tests.conftest import CANDLES


@pytest.fixture(scope="module")
def feed():
    """Six symbols replaying the bundled real series, interleaved by time like a live feed."""
    base = [read_candle_file(f).candles[:300] for f in sorted(CANDLES.glob("*.csv.gz"))]
    candles = [dataclasses.replace(c, symbol=f"S{k}") for k in range(6) for c in base[k % len(base)]]
    return sorted(candles, key=lambda c: (c.open_time, c.symbol))


@pytest.mark.parametrize("seed", [1, 2])
def test_batches_of_every_shape_equal_one_feature_state_per_series(feed, seed):
    """Wide batches (rounds through the bank) and deep ones (a series folded on its own) mixed."""
    assert alone_above([1] * 3) == 1 and alone_above([6] * 6) == 0  # batches of 3 go in rounds, of 36 alone
    rng, book, reference = random.Random(seed), SeriesBook(), {}
    i = 0
    while i < len(feed):
        batch = feed[i:i + rng.choice([1, 3, 6, 36, 60])]
        i += len(batch)
        rows, ready, rejected = book.fold(batch)
        assert not rejected
        for row, flag, c in zip(rows, ready, batch):
            state = reference.setdefault(c.symbol, FeatureState())
            assert np.array_equal(row, state.update(c), equal_nan=True) and flag == state.ready
    for symbol, state in reference.items():
        assert book.state(f"{symbol}|5m").features.to_bytes() == state.to_bytes()
    # What a checkpoint writes, straight from the bank (warm series) or the scalar state (warming up):
    keys = [f"{symbol}|5m" for symbol in reference] + ["never-folded|5m"]
    book.load("never-folded|5m", None)
    assert book.states_bytes(keys) == [book.state(key).to_bytes() for key in keys]


def test_a_late_candle_is_rejected_and_changes_nothing(feed):
    book = SeriesBook()
    book.fold(feed[:60])
    before = book.states_bytes(["S0|5m"])
    late = next(c for c in feed[:60] if c.symbol == "S0")
    others = [dataclasses.replace(late, symbol=symbol) for symbol in ("S1", "S2", "S3")]  # as late for theirs
    assert alone_above([1] * 4) == 1 and alone_above([6, 1, 1, 1]) == 1
    for copies in (1, 6):  # all in a round; then S0 alone, the others in a round
        rows, _, rejected = book.fold([late] * copies + others)
        assert [e.kind for _, e in rejected] == ["out_of_order"] * (copies + 3) and np.isnan(rows).all()
    assert book.states_bytes(["S0|5m"]) == before


def test_stored_form_round_trip_and_what_a_position_covers(feed):
    book = SeriesBook()
    book.fold(feed[:120])
    book.positions["S1|5m"] = Position("candles.5m", 1, 41)
    restored = SeriesBook()
    restored.load("S1|5m", SeriesState.from_bytes(*book.states_bytes(["S1|5m"])))
    assert restored.states_bytes(["S1|5m"]) == book.states_bytes(["S1|5m"])
    last = restored.last_open_time("S1|5m")
    assert restored.covers("S1|5m", Position("candles.5m", 1, 41), last)
    assert not restored.covers("S1|5m", Position("candles.5m", 1, 42), last + 300_000)  # newer: scored
    assert not restored.covers("S1|5m", Position("candles.5m", 0, 3), last)  # another partition: not ours to skip
    np.testing.assert_array_equal(restored.window("S1|5m"), book.window("S1|5m"))


def test_a_bank_with_ties_and_restored_rings_writes_what_the_scalar_state_writes(feed):
    """Equal highs/lows (a tie pops the older value from the scalar deque) and rings loaded from a stored
    state (their dominated slots are +-inf) must still give the scalar state's bytes."""
    flat = [dataclasses.replace(c, high=round(c.high, 5), low=round(c.low, 5)) for c in feed[:240]]
    flat = [dataclasses.replace(c, high=max(c.high, c.open, c.close), low=min(c.low, c.open, c.close)) for c in flat]
    repeated = [dataclasses.replace(c, high=flat[i - i % 3].high if i % 3 and flat[i - i % 3].high >= max(c.open, c.close) else c.high)
                for i, c in enumerate(flat)]
    book, reference = SeriesBook(), {}
    for i in range(0, len(repeated), 6):
        book.fold(repeated[i:i + 6])
        for c in repeated[i:i + 6]:
            reference.setdefault(c.symbol, FeatureState()).update(c)
        if i == 120:  # reload every series from its stored form mid-way
            for key in list(book):
                book.load(key, SeriesState.from_bytes(*book.states_bytes([key])))
    keys = sorted(book)
    assert book.states_bytes(keys) == [book.state(key).to_bytes() for key in keys]
    for key, blob in zip(keys, book.states_bytes(keys)):
        assert SeriesState.from_bytes(blob).features.to_bytes() == reference[key.split("|")[0]].to_bytes(), key
