"""FeatureBank against one FeatureState per symbol: bit-identical, gaps and restarts included."""

from __future__ import annotations

import numpy as np
import pytest

from core.candle import Candle
from core.errors import InvalidInput, OutOfOrder
from features import FeatureBank, FeatureState

from .conftest import FILES, load_series

N = 1200  # candles per series: long enough for every ring to lap many times, short enough to stay fast


def interleaved(timeframe: str, drop: bool) -> list[list[Candle]]:
    """Batches of one candle per symbol per open time, over every real file of ``timeframe``.

    With ``drop``, each series also loses a few candles (short gaps the engine fills) and one long
    run (a gap past MAX_FILLED_GAP, which restarts the warm-up), at places that differ per symbol.
    """
    names = [f for f in FILES if f.endswith("_" + timeframe)]
    if not names:
        pytest.skip(f"no {timeframe} candle files")
    per_symbol = []
    for k, name in enumerate(names):
        candles = load_series(name).candles[:N]
        if drop:
            gone = {100 + 7 * k, 101 + 7 * k, 333 + k, *range(600 + 13 * k, 680 + 13 * k)}
            candles = [c for i, c in enumerate(candles) if i not in gone]
        per_symbol.append(candles)
    by_time: dict[int, list[Candle]] = {}
    for candles in per_symbol:
        for c in candles:
            by_time.setdefault(c.open_time, []).append(c)
    return [by_time[t] for t in sorted(by_time)]


@pytest.mark.parametrize("timeframe", ["5m", "1m"])
@pytest.mark.parametrize("drop", [False, True])
def test_bank_equals_one_state_per_symbol(timeframe, drop):
    batches = interleaved(timeframe, drop)
    bank = FeatureBank(timeframe)
    states: dict[str, FeatureState] = {}
    for batch in batches:
        got = bank.update_many(batch)
        want = np.array([states.setdefault(c.symbol, FeatureState()).update(c) for c in batch])
        np.testing.assert_array_equal(got, want)  # bit-identical, NaN in the same places
    for symbol, state in states.items():
        assert bank.state(symbol).to_bytes() == state.to_bytes()
        np.testing.assert_array_equal(bank.window(symbol, 60), state.window(60))


def test_conversion_round_trips_continue_identically():
    batches = interleaved("5m", drop=True)
    head, tail = batches[:500], batches[500:700]
    bank = FeatureBank("5m")
    for batch in head:
        bank.update_many(batch)
    blobs = {s: bank.state(s).to_bytes() for s in bank.symbols}  # what the agent keeps in its table
    restored = FeatureBank.from_states({s: FeatureState.from_bytes(b) for s, b in blobs.items()}, "5m")
    singles = {s: FeatureState.from_bytes(b) for s, b in blobs.items()}
    for s in bank.symbols:
        assert restored.state(s).to_bytes() == blobs[s]
    for batch in tail:
        a, b = bank.update_many(batch), restored.update_many(batch)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, np.array([singles[c.symbol].update(c) for c in batch]))


def test_update_arrays_matches_update_many():
    batches = interleaved("5m", drop=False)[:80]
    a, b = FeatureBank("5m"), FeatureBank("5m")
    for batch in batches:
        cols = np.array([(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in batch])
        got = b.update_arrays([c.symbol for c in batch], cols[:, 0].astype(np.int64), *cols[:, 1:].T)
        np.testing.assert_array_equal(got, a.update_many(batch))


def test_optional_fields_and_missing_ones():
    def candle(symbol: str, i: int, full: bool) -> Candle:
        close = 1.0 + 0.01 * ((i * 7) % 11)
        extra = {"quote_volume": 2.0 * close, "trades": 3 + i % 4, "taker_buy_base_volume": 0.5 * (i % 3),
                 "taker_buy_quote_volume": 0.4, "spread_bps": 1.5} if full else {}
        return Candle(symbol, "1m", 60_000 * i, close, close * 1.01, close * 0.99, close, float(i % 3), **extra)

    bank, states = FeatureBank("1m"), {"A-B": FeatureState(), "C-D": FeatureState()}
    for i in range(80):
        batch = [candle("A-B", i, True), candle("C-D", i, i % 5 == 0)]
        np.testing.assert_array_equal(bank.update_many(batch), np.array([states[c.symbol].update(c) for c in batch]))
    assert bank.state("C-D").to_bytes() == states["C-D"].to_bytes()


def test_out_of_order_raises_before_any_change():
    batches = interleaved("5m", drop=False)[:60]
    bank = FeatureBank("5m")
    for batch in batches:
        bank.update_many(batch)
    before = {s: bank.state(s).to_bytes() for s in bank.symbols}
    fresh = Candle("NEW-SYM", "5m", batches[-1][0].open_time + 300_000, 1.0, 1.0, 1.0, 1.0, 1.0)
    late = batches[-2][0]
    with pytest.raises(OutOfOrder, match=late.symbol):
        bank.update_many([fresh, late])
    with pytest.raises(InvalidInput):
        bank.update_many([fresh, fresh])  # one candle per symbol per batch
    with pytest.raises(InvalidInput):
        bank.update_many([Candle("X-Y", "1m", 0, 1.0, 1.0, 1.0, 1.0, 1.0)])
    assert {s: bank.state(s).to_bytes() for s in before} == before
    assert "NEW-SYM" not in bank


def test_set_state_refuses_another_timeframe():
    state = FeatureState()
    state.update(Candle("X-Y", "1m", 0, 1.0, 1.0, 1.0, 1.0, 1.0))
    with pytest.raises(InvalidInput):
        FeatureBank("5m").set_state("X-Y", state)


def test_removed_symbols_leave_the_rest_identical_and_come_back_from_their_bytes():
    """remove() moves rows around: every remaining symbol goes on bit-identically, and a removed one put
    back from its stored bytes (what the live book's LRU does) continues as if it had never left."""
    batches = interleaved("5m", drop=True)
    bank, states = FeatureBank("5m", capacity=2), {}
    for batch in batches[:400]:
        bank.update_many(batch)
        for c in batch:
            states.setdefault(c.symbol, FeatureState()).update(c)
    symbols = bank.symbols
    assert len(symbols) >= 3, "needs three symbols or more"
    gone = symbols[:1] + symbols[-1:]  # the first row (a move into it) and the last one (no move)
    stored = {s: bank.state(s).to_bytes() for s in gone}
    bank.remove(gone + ["never-seen"])
    assert sorted(bank.symbols) == sorted(set(symbols) - set(gone))
    for s in bank.symbols:
        assert bank.state(s).to_bytes() == states[s].to_bytes()
    for batch in batches[400:500]:  # the removed ones stay away for a while, then return
        kept = [c for c in batch if c.symbol not in gone]
        np.testing.assert_array_equal(bank.update_many(kept), np.array([states[c.symbol].update(c) for c in kept]))
        for c in batch:
            if c.symbol in gone:  # the reference never stops
                states[c.symbol].update(c)
    for s in gone:  # back, from the bytes written before they left, then replayed to catch up
        state = FeatureState.from_bytes(stored[s])
        for batch in batches[400:500]:
            for c in batch:
                if c.symbol == s:
                    state.update(c)
        bank.set_state(s, state)
    for batch in batches[500:700]:
        np.testing.assert_array_equal(bank.update_many(batch), np.array([states[c.symbol].update(c) for c in batch]))


def test_a_bank_mostly_emptied_gives_its_memory_back():
    bank = FeatureBank("5m")
    candles = [Candle(f"S{k}", "5m", 300_000, 1.0, 1.1, 0.9, 1.0, 2.0) for k in range(1000)]
    bank.update_many(candles)
    capacity = bank._vec.shape[0]
    bank.remove([c.symbol for c in candles[10:]])
    assert bank._vec.shape[0] < capacity // 4 and sorted(bank.symbols) == sorted(c.symbol for c in candles[:10])
    assert len(bank.update_many([Candle(c.symbol, "5m", 600_000, 1.0, 1.2, 0.9, 1.1, 2.0) for c in candles])) == 1000
    assert bank.count("S0") == 2 and bank.count("S999") == 1
