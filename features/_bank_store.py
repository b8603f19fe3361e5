"""BankStore: where a :class:`~features.bank.FeatureBank` keeps each symbol's feature state.

One row per symbol. A warm symbol's state (``READY_AFTER`` candles or more) lives in the matrices, one
column of ``_M`` (the running sums and rings in :data:`._layout.LAYOUT` order) and one entry of each
per-row array, its window in ``_win``; a symbol still warming up lives as a FeatureState object (the
scalar path owns it). Rows are added at the end, and a removed symbol's row takes the last one.

Conversion both ways is exact: :meth:`BankStore.state` gives a FeatureState, :meth:`BankStore.set_state`
takes one in, and :meth:`BankStore.states_bytes` writes what ``state(symbol).to_bytes()`` would, straight
from the matrices. The updates (:mod:`features.bank`) read and write the arrays directly: the per-candle
path pays no call per row.

>>> from core.candle import Candle
>>> state = FeatureState()
>>> for i in range(40):
...     _ = state.update(Candle("A-B", "1m", 60_000 * i, 1.0, 1.1, 0.9, 1.0 + (i % 5) / 50, 2.0))
>>> store = BankStore("1m")
>>> store.set_state("A-B", state)  # warm: into the matrices
>>> bool(store._vec[0]), store.count("A-B"), store.last_open_time("A-B")
(True, 40, 2340000)
>>> store.states_bytes(["A-B"]) == [store.state("A-B").to_bytes()] == [state.to_bytes()]
True
>>> store.remove(["A-B"]); len(store), "A-B" in store
(0, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np

from core.candle import timeframe_ms
from core.errors import InvalidInput
from features._layout import LAYOUT, canonical, pack, unpack
from features.codec import frame
from features.names import N_FEATURES, READY_AFTER
from features.state import WINDOW, FeatureState

__all__ = ["BankStore"]

_PER_ROW = ("_vec", "_count", "_last", "_last_close", "_has_opt", "_win", "_win_pos", "_win_size")  # arrays indexed [row]


class BankStore:
    """Per-symbol feature states of one timeframe, in matrices (warm symbols) or FeatureStates (warming)."""

    def __init__(self, timeframe: str = "1m", capacity: int = 64) -> None:
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)
        self._row: dict[str, int] = {}
        self._symbols: list[str] = []
        self._scalar: dict[int, FeatureState] = {}  # rows still warming up (or empty)
        self._rows_cache: tuple[tuple[str, ...], np.ndarray] | None = None
        self._alloc(max(capacity, 1))

    def _alloc(self, cap: int) -> None:
        n = len(self._symbols)
        vec_rows = np.flatnonzero(self._vec[:n]) if n else None
        grown = {
            "_M": np.zeros((LAYOUT.size, cap)),
            "_vec": np.zeros(cap, dtype=bool),  # True: the state lives in column row of _M
            "_count": np.zeros(cap, dtype=np.int64),
            "_last": np.full(cap, -1, dtype=np.int64),  # last open time, -1 before the first
            "_last_close": np.full(cap, np.nan),
            "_has_opt": np.zeros((cap, 4), dtype=bool),
            # Only rows of the vectorised path hold a window here (a warming row's is in its FeatureState):
            # left uninitialised, the pages of the others are never touched, so never resident.
            "_win": np.empty((cap, WINDOW, N_FEATURES), dtype=np.float32),
            "_win_pos": np.zeros(cap, dtype=np.int64),
            "_win_size": np.zeros(cap, dtype=np.int64),
        }
        for name, arr in grown.items():
            if n:
                old = getattr(self, name)
                if name == "_M":
                    arr[:, :n] = old[:, :n]
                elif name == "_win":
                    arr[vec_rows] = old[vec_rows]
                else:
                    arr[:n] = old[:n]
            setattr(self, name, arr)

    def __len__(self) -> int:
        return len(self._symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._row

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def _add(self, symbol: str) -> int:
        row = len(self._symbols)
        if row == self._vec.shape[0]:
            self._alloc(row + max(64, row // 2))  # 1.5x: a doubled bank of thousands of rows is mostly empty
        self._row[symbol] = row
        self._symbols.append(symbol)
        self._scalar[row] = FeatureState()
        return row

    def remove(self, symbols: Iterable[str]) -> None:
        """Forget ``symbols`` (their state is kept elsewhere: a checkpoint wrote it to the table). The last
        rows move into the freed ones, and the matrices shrink once they are mostly empty."""
        for symbol in symbols:
            row = self._row.pop(symbol, None)
            if row is None:
                continue
            last = len(self._symbols) - 1
            self._scalar.pop(row, None)
            if row != last:
                moved = self._symbols[last]
                for name in _PER_ROW:
                    if name != "_win" or self._vec[last]:
                        arr = getattr(self, name)
                        arr[row] = arr[last]
                self._M[:, row] = self._M[:, last]
                if last in self._scalar:
                    self._scalar[row] = self._scalar.pop(last)
                self._symbols[row], self._row[moved] = moved, row
            self._symbols.pop()
            self._clear_row(last)
        self._rows_cache = None  # rows moved
        n, cap = len(self._symbols), self._vec.shape[0]
        if cap > 64 and n < cap // 4:
            self._alloc(max(64, 2 * n))

    def _clear_row(self, row: int) -> None:
        """Back to what a new row holds (``_add`` relies on it)."""
        self._M[:, row] = 0.0
        self._vec[row], self._count[row], self._last[row], self._last_close[row] = False, 0, -1, np.nan
        self._has_opt[row], self._win_pos[row], self._win_size[row] = False, 0, 0  # _win[row]: see _alloc

    # ---- conversion to and from FeatureState -------------------------------------------------

    def state(self, symbol: str, copy: bool = True) -> FeatureState:
        """A copy of ``symbol``'s state as a FeatureState (KeyError if the bank has never seen it).

        ``copy=False`` may return the bank's own object (a symbol still warming up): only read it, at once.
        """
        row = self._row[symbol]
        if not self._vec[row]:
            return self._scalar[row] if not copy else FeatureState.from_bytes(self._scalar[row].to_bytes())
        state = FeatureState()
        state.count, state.step_ms = int(self._count[row]), self.step_ms
        state.last_open_time = int(self._last[row])
        state.last_close = float(self._last_close[row])
        state.has_optional = tuple(bool(x) for x in self._has_opt[row])
        unpack(self._M[:, row].tolist(), state)
        state._win = self._win[row].copy()
        state._win_pos, state._win_size = int(self._win_pos[row]), int(self._win_size[row])
        return state

    def states_bytes(self, symbols: Sequence[str]) -> list[bytes]:
        """``[self.state(s).to_bytes() for s in symbols]``, the same bytes, written straight from the
        matrix (a FeatureState per symbol would cost ~15x more: what a checkpoint writes)."""
        rows = [self._row[s] for s in symbols]
        vec = [j for j, row in enumerate(rows) if self._vec[row]]
        out: list[bytes] = [b""] * len(rows)
        for j, row in enumerate(rows):
            if not self._vec[row]:
                out[j] = self._scalar[row].to_bytes()
        if not vec:
            return out
        vec_rows = np.array([rows[j] for j in vec])
        floats = np.empty((len(vec), 1 + LAYOUT.size))
        floats[:, 0] = self._last_close[vec_rows]
        floats[:, 1:] = canonical(self._M[:, vec_rows]).T
        masks = (self._has_opt[vec_rows] * (1 << np.arange(4))).sum(axis=1).tolist()
        for j, row, values, mask in zip(vec, vec_rows.tolist(), floats, masks):
            size, pos = int(self._win_size[row]), int(self._win_pos[row])
            window = self._win[row, (np.arange(pos - size, pos)) % WINDOW]
            out[j] = frame(mask, int(self._count[row]), int(self._last[row]), self.step_ms, values, window)
        return out

    def set_state(self, symbol: str, state: FeatureState) -> None:
        """Make ``state`` (not kept: copied) ``symbol``'s state, adding the symbol if new."""
        if state.step_ms not in (0, self.step_ms):
            raise InvalidInput(f"state of {state.step_ms} ms candles for a bank of {self.timeframe} candles")
        row = self._row[symbol] if symbol in self._row else self._add(symbol)
        self._store(row, state)

    def _store(self, row: int, state: FeatureState, copy: bool = True) -> None:
        self._last[row] = -1 if state.last_open_time is None else state.last_open_time
        if state.count < READY_AFTER:  # warming up: the scalar path owns it
            self._vec[row] = False
            self._scalar[row] = FeatureState.from_bytes(state.to_bytes()) if copy else state
            return
        self._scalar.pop(row, None)
        self._vec[row] = True
        self._M[:, row] = pack(state)
        self._count[row] = state.count
        self._last_close[row] = state.last_close
        self._has_opt[row] = state.has_optional
        self._win[row, :len(state._win)] = state._win  # a shorter buffer has not wrapped: rows [0, size)
        self._win_pos[row], self._win_size[row] = state._win_pos, state._win_size

    def last_open_time(self, symbol: str) -> int | None:
        """Open time of ``symbol``'s last candle (None before its first)."""
        last = int(self._last[self._row[symbol]])
        return None if last < 0 else last

    def count(self, symbol: str) -> int:
        """Candles folded into ``symbol``'s state (gap fills included), as ``FeatureState.count``."""
        row = self._row[symbol]
        return int(self._count[row]) if self._vec[row] else self._scalar[row].count

    def window(self, symbol: str, k: int = WINDOW) -> np.ndarray:
        """``FeatureState.window(k)`` of ``symbol``."""
        row = self._row[symbol]
        if not self._vec[row]:
            return self._scalar[row].window(k)
        k = min(k, int(self._win_size[row]))
        return self._win[row, (np.arange(self._win_pos[row] - k, self._win_pos[row])) % WINDOW]

    def _rows_of(self, symbols: Sequence[str]) -> np.ndarray:
        """Rows of ``symbols`` (-1 for new ones); a feed sends the same symbols every interval, so cache them."""
        key = tuple(symbols)
        cached = self._rows_cache
        if cached is not None and cached[0] == key:  # rows move only in remove(), which drops the cache
            return cached[1].copy()
        rows = np.fromiter(map(self._row.get, key, repeat(-1)), np.intp, len(key))
        if (rows >= 0).all():
            self._rows_cache = (key, rows.copy())
        return rows
