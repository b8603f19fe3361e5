"""A FeatureState kept in two key-value tables: the state, and its window one row per key.

Why two: the window of recent feature vectors is three quarters of a state (~9.8 KB of ~13 KB), and a
changelogged table sends a whole new value on every write, i.e. on every candle. Stored apart, each
window row is written once under its ring slot (``"ETH-BTC|5m#17"``, ~180 bytes) and the state without
its window is ~3 KB, so a candle costs its changelog ~3.3 KB instead of 13 KB. Compaction keeps the
newest value of each slot, which is exactly the window. Rows are written before the state, so a state
never points at rows that are not there; a row left over from before a restart is recognised by its tag
and not used (:mod:`streams.features.codec`).

>>> import numpy as np
>>> from streams.candle import Candle
>>> states, windows = {}, {}
>>> state = FeatureState()
>>> for i in range(70):
...     _ = state.update(Candle("ETH-BTC", "1m", 60_000 * i, 1.0, 1.2, 0.9, 1.0 + i / 100, 5.0))
>>> save_state(states, windows, "ETH-BTC|1m", state)
>>> len(windows), len(states[b"ETH-BTC|1m"]) < 4_000
(60, True)
>>> restored = load_state(states, windows, "ETH-BTC|1m")
>>> np.array_equal(restored.window(), state.window(), equal_nan=True), restored.count
(True, 70)
"""

from __future__ import annotations

from typing import Any, MutableMapping

from streams.features import FeatureState

__all__ = ["load_state", "save_state", "window_key"]

Table = MutableMapping[bytes, Any]  # a Faust table, or a dict in tests


def window_key(key: str, slot: int) -> bytes:
    return f"{key}#{slot}".encode()


def load_state(states: Table, windows: Table, key: str) -> FeatureState | None:
    """The state of ``key`` with its window, or None if there is none (DecodeError if unreadable)."""
    blob = states.get(key.encode())
    if blob is None:
        return None
    return FeatureState.from_bytes(blob, rows=lambda slot: windows.get(window_key(key, slot)))


def save_state(states: Table, windows: Table, key: str, state: FeatureState) -> None:
    """Write the rows ``state`` added since it was last saved, then the state itself."""
    for slot, row in state.take_unsaved_rows():
        windows[window_key(key, slot)] = row
    states[key.encode()] = state.to_bytes(window=False)
