"""A feature state stored as a slim state value plus window rows: the same state comes back, whatever
happened in between (many saves, restarts of the series, rows missing after a crash)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.candle import Candle
from streams.feature_store import ROWS_PER_BLOCK, load_state, save_state, window_key
from streams.features import FeatureState
from streams.features.state import MAX_FILLED_GAP, WINDOW

MINUTE = 60_000
KEY = "ETH-BTC|1m"


def candle(i: int, close: float = 1.0) -> Candle:
    return Candle("ETH-BTC", "1m", MINUTE * i, close, close * 1.01, close * 0.99, close, 5.0 + i % 7)


def same(a: FeatureState, b: FeatureState) -> bool:
    return a.to_bytes() == b.to_bytes()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_saved_after_every_few_candles_the_loaded_state_is_the_live_one(chunks):
    live, states, windows, i = FeatureState(), {}, {}, 0
    for n in chunks:
        for _ in range(n):
            live.update(candle(i, 1.0 + (i % 13) / 100))
            i += 1
        save_state(states, windows, KEY, live)
        assert same(load_state(states, windows, KEY), live)
    assert len(windows) == -(-min(i, WINDOW) // ROWS_PER_BLOCK)  # blocks, each written when one of its rows changed


def test_the_state_value_is_a_quarter_of_the_inline_blob_and_a_candle_rewrites_one_block():
    live, states, windows = FeatureState(), {}, {}
    writes: list[bytes] = []

    class Recording(dict):
        def __setitem__(self, key, value):
            writes.append(key)
            super().__setitem__(key, value)

    windows = Recording()
    for i in range(200):
        live.update(candle(i))
        save_state(states, windows, KEY, live)
    assert len(states[KEY.encode()]) * 3 < len(live.to_bytes())
    assert len(writes) == 200 and len(set(writes)) == WINDOW // ROWS_PER_BLOCK  # one block per candle


def test_a_restarted_series_never_reads_rows_of_its_earlier_life():
    live, states, windows = FeatureState(), {}, {}
    for i in range(100):
        live.update(candle(i))
    save_state(states, windows, KEY, live)
    live.update(candle(100 + MAX_FILLED_GAP + 5))  # stale gap: warm-up starts again, count 1
    save_state(states, windows, KEY, live)
    restored = load_state(states, windows, KEY)
    assert restored.count == 1 and same(restored, live)


def test_rows_lost_in_a_crash_shorten_the_window_instead_of_mixing_in_wrong_rows():
    live, states, windows = FeatureState(), {}, {}
    for i in range(80):
        live.update(candle(i))
    save_state(states, windows, KEY, live)
    slot = (70 - 1) % WINDOW  # the block holding the row of the 70th candle never arrived
    del windows[window_key(KEY, slot // ROWS_PER_BLOCK)]
    restored = load_state(states, windows, KEY)
    assert len(restored.window()) == 10  # candles 71..80; the lost block held the rows of 61..70
    assert np.array_equal(restored.window(), live.window(10), equal_nan=True)
    assert restored.count == live.count and np.array_equal(restored.update(candle(80)), live.update(candle(80)), equal_nan=True)


def test_a_state_from_an_inline_blob_writes_its_whole_window_when_first_saved_apart():
    live = FeatureState()
    for i in range(90):
        live.update(candle(i))
    migrated, states, windows = FeatureState.from_bytes(live.to_bytes()), {}, {}
    save_state(states, windows, KEY, migrated)
    assert len(windows) == WINDOW // ROWS_PER_BLOCK and same(load_state(states, windows, KEY), live)


def test_no_state_is_none():
    assert load_state({}, {}, KEY) is None
