"""A FeatureState kept in two key-value tables: the state, and its window in a few blocks of rows.

Why two: the window of recent feature vectors is three quarters of a state (~9.8 KB of ~13 KB), and a
changelogged table sends a whole new value on every write, i.e. on every candle. Stored apart, the
state without its window is ~3.3 KB, and a candle rewrites only the block of ``ROWS_PER_BLOCK`` window
rows its row falls in (``"ETH-BTC|5m#3"``, ~1.7 KB). Blocks rather than single rows: after compaction a
series is 1 + 6 records, not 1 + 60, and recovery time follows the number of records. Blocks are
written before the state, so a state never points at rows that are not there; a row left over from
before a restart, or lost in a crash, is recognised by its tag and not used
(:mod:`streams.features.codec`).

>>> import numpy as np
>>> from streams.candle import Candle
>>> states, windows = {}, {}
>>> state = FeatureState()
>>> for i in range(70):
...     _ = state.update(Candle("ETH-BTC", "1m", 60_000 * i, 1.0, 1.2, 0.9, 1.0 + i / 100, 5.0))
>>> save_state(states, windows, "ETH-BTC|1m", state)
>>> len(windows), len(states[b"ETH-BTC|1m"]) < 4_000
(6, True)
>>> restored = load_state(states, windows, "ETH-BTC|1m")
>>> np.array_equal(restored.window(), state.window(), equal_nan=True), restored.count
(True, 70)
"""

from __future__ import annotations

from typing import Any, MutableMapping

import numpy as np

from streams.features import FeatureState
from streams.features.codec import ROW_BYTES, encode_row
from streams.features.names import N_FEATURES
from streams.features.state import WINDOW

__all__ = ["ROWS_PER_BLOCK", "load_state", "save_state", "window_key"]

ROWS_PER_BLOCK = 10
_EMPTY_ROW = encode_row(0, np.full(N_FEATURES, np.nan))  # tag 0: matches no real row (tags count from 1)

Table = MutableMapping[bytes, Any]  # a Faust table, or a dict in tests


def window_key(key: str, block: int) -> bytes:
    return f"{key}#{block}".encode()


def load_state(states: Table, windows: Table, key: str) -> FeatureState | None:
    """The state of ``key`` with its window, or None if there is none (DecodeError if unreadable)."""
    blob = states.get(key.encode())
    if blob is None:
        return None
    blocks: dict[int, bytes | None] = {}

    def row(slot: int) -> bytes | None:
        block = slot // ROWS_PER_BLOCK
        if block not in blocks:
            blocks[block] = windows.get(window_key(key, block))
        value, start = blocks[block], (slot % ROWS_PER_BLOCK) * ROW_BYTES
        return value[start:start + ROW_BYTES] if value is not None and len(value) >= start + ROW_BYTES else None

    return FeatureState.from_bytes(blob, rows=row)


def save_state(states: Table, windows: Table, key: str, state: FeatureState) -> None:
    """Write the window blocks that changed since ``state`` was last saved, then the state itself."""
    for block in sorted({slot // ROWS_PER_BLOCK for slot in state.take_unsaved_slots()}):
        slots = range(block * ROWS_PER_BLOCK, min((block + 1) * ROWS_PER_BLOCK, WINDOW))
        rows = state.window_rows(slots)  # only the changed block's rows: this runs on every candle
        windows[window_key(key, block)] = b"".join(rows.get(slot, _EMPTY_ROW) for slot in slots)
    states[key.encode()] = state.to_bytes(window=False)
