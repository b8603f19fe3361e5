"""RecentSignals: the last ``keep`` signals per symbol from small writes, newest first."""

from __future__ import annotations

from streams.recent_signals import RecentSignals


def signal(symbol: str, t: int) -> dict:
    return {"symbol": symbol, "open_time": t, "direction": "UP"}


def write(recent: RecentSignals) -> None:
    """What a checkpoint does with the pending writes, on plain dicts."""
    for table, key, value, _ in recent.take_writes():
        table[key] = value


def test_the_ring_keeps_the_last_signals_of_each_symbol_newest_first():
    heads, ring = {}, {}
    recent = RecentSignals(heads, ring, keep=5)
    for t in range(23):
        recent.add(signal("A", t))
        if t % 3 == 0:
            recent.add(signal("B", 100 + t))
    assert [s["open_time"] for s in recent.recent("A")] == [22, 21, 20, 19, 18]
    assert [s["open_time"] for s in recent.recent("A", limit=2)] == [22, 21]
    assert [s["open_time"] for s in recent.recent("B")] == [121, 118, 115, 112, 109]
    assert not ring, "written behind, by the checkpoint"
    write(recent)
    assert [s["open_time"] for s in recent.recent("A")] == [22, 21, 20, 19, 18]
    assert len(ring) == 10 and set(heads) == {b"A", b"B"}  # bounded: keep slots per symbol
    assert [s["symbol"] for s in recent.latest()] == ["B", "A"] and recent.latest(limit=1)[0]["open_time"] == 121


def test_fewer_signals_than_the_ring_and_unknown_symbols():
    recent = RecentSignals({}, {}, keep=50)
    recent.add(signal("A", 1))
    assert recent.recent("A") == [signal("A", 1)] and recent.recent("Z") == [] and recent.latest() == [signal("A", 1)]


def test_a_slot_lost_in_a_crash_is_skipped_not_invented():
    heads, ring = {}, {}
    recent = RecentSignals(heads, ring, keep=4)
    for t in range(6):
        recent.add(signal("A", t))
        write(recent)
    del ring[b"A#0"]  # the slot of the fifth signal (seq 4 of a ring of 4)
    assert [s["open_time"] for s in recent.recent("A")] == [5, 3, 2]
