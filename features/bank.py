"""FeatureBank: the feature states of many symbols of one timeframe, updated a batch at a time.

Equivalent to one :class:`FeatureState` per symbol, and bit-identical to it, but a batch of
candles of distinct symbols is folded in with numpy operations over all of them at once
(:mod:`._vstep`), which amortises Python's per-candle cost across the batch.

Routing: a symbol whose state has passed warm-up (``READY_AFTER`` candles) and whose candle
follows its last one without a gap takes the vectorised path. Every other case (warm-up, a gap
to fill, a stale history to restart) is rare and takes the scalar path: that symbol's
``FeatureState.update`` itself, so the messy-feed rules cannot drift apart. A symbol's state
therefore lives either in the bank's matrix (one column) or as a FeatureState object, and moves
to the matrix once it is warm.

Conversion both ways is exact: ``bank.state(symbol)`` returns a FeatureState (so the agent can
keep ``to_bytes()`` per symbol in its table) and ``FeatureBank.from_states`` / ``set_state``
load them back; either continues bit-identically.

>>> from core.candle import Candle
>>> bank, single = FeatureBank("1m"), FeatureState()
>>> for i in range(40):
...     batch = [Candle(s, "1m", 60_000 * i, 1.0, 1.1 + k / 10, 0.9, 1.0 + (i % 7) / 50, 3.0 + k)
...              for k, s in enumerate(("A-B", "C-D"))]
...     out = bank.update_many(batch)
...     ref = single.update(batch[1])
>>> out.shape, bool(np.array_equal(out[1], ref, equal_nan=True)), bank.state("C-D").to_bytes() == single.to_bytes()
((2, 41), True, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat

import numpy as np

from core.candle import Candle, timeframe_ms
from core.errors import InvalidInput, OutOfOrder
from features._layout import LAYOUT, canonical, pack, unpack
from features._vstep import vector_step
from features.codec import frame
from features.names import N_FEATURES, READY_AFTER
from features.state import WINDOW, FeatureState

__all__ = ["FeatureBank"]

_OPTIONAL = ("quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume", "trades")  # has_optional order


def _column(x, n: int, name: str) -> np.ndarray:
    """An optional input as float64; None means the feed lacks it for every candle (NaN)."""
    if x is None:
        return np.full(n, np.nan)
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (n,):
        raise InvalidInput(f"{name} has shape {a.shape}, expected ({n},)")
    return a


_PER_ROW = ("_vec", "_count", "_last", "_last_close", "_has_opt", "_win", "_win_pos", "_win_size")  # arrays indexed [row]

class FeatureBank:
    """Per-symbol feature states of one timeframe; ``update_many`` folds in one candle per symbol."""

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

    @classmethod
    def from_states(cls, states: Mapping[str, FeatureState], timeframe: str) -> FeatureBank:
        """A bank holding a copy of each ``symbol -> FeatureState``."""
        bank = cls(timeframe, capacity=len(states))
        for symbol, state in states.items():
            bank.set_state(symbol, state)
        return bank

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

    # ---- updates ----------------------------------------------------------------------------

    def update_many(self, candles: Sequence[Candle]) -> np.ndarray:
        """Fold in one candle per distinct symbol; row ``i`` of the result is ``candles[i]``'s vector."""
        for c in candles:
            if c.timeframe != self.timeframe:
                raise InvalidInput(f"{c.symbol}: {c.timeframe} candle for a bank of {self.timeframe} candles")
        cols = list(zip(*[(c.open_time, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades,
                           c.taker_buy_base_volume, c.taker_buy_quote_volume, c.spread_bps) for c in candles]))
        if not cols:
            return np.empty((0, N_FEATURES))
        opt = [np.array([np.nan if x is None else x for x in col], dtype=np.float64) for col in cols[6:]]
        return self.update_arrays([c.symbol for c in candles], *cols[:6], *opt)

    def update_arrays(self, symbols: Sequence[str], open_time, open, high, low, close, volume,
                      quote_volume=None, trades=None, taker_buy_base_volume=None, taker_buy_quote_volume=None,
                      spread_bps=None) -> np.ndarray:
        """:meth:`update_many` from columns (the fast path): NaN in an optional column means "missing".

        Raises OutOfOrder (naming the symbol) for a candle not newer than its symbol's last one,
        before any state changes.
        """
        n = len(symbols)
        if len(set(symbols)) != n:
            raise InvalidInput("a batch holds at most one candle per symbol")
        t = np.asarray(open_time, dtype=np.int64)
        prices = [np.asarray(x, dtype=np.float64) for x in (open, high, low, close, volume)]
        opt = [_column(x, n, name) for x, name in ((quote_volume, "quote_volume"), (trades, "trades"),
               (taker_buy_base_volume, "taker_buy_base_volume"),
               (taker_buy_quote_volume, "taker_buy_quote_volume"), (spread_bps, "spread_bps"))]
        rows = self._rows_of(symbols)
        last = np.where(rows >= 0, self._last[rows], -1)
        late = np.flatnonzero(t <= last)
        if late.size:
            i = late[0]
            raise OutOfOrder(f"{symbols[i]}: candle open_time {t[i]} is not after the last one ({last[i]})")
        for i in np.flatnonzero(rows < 0):
            rows[i] = self._add(symbols[i])
        out = np.empty((n, N_FEATURES))
        fast = self._vec[rows] & (t - last == self.step_ms)
        if fast.all():
            out[:] = self._vector(rows, t, prices, opt)
        else:
            if fast.any():
                out[fast] = self._vector(rows[fast], t[fast], [x[fast] for x in prices], [x[fast] for x in opt])
            for i in np.flatnonzero(~fast):
                out[i] = self._scalar_update(int(rows[i]), symbols[i], int(t[i]), [x[i] for x in prices],
                                             [x[i] for x in opt])
        return out

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

    def _vector(self, rows: np.ndarray, t: np.ndarray, prices: list, opt: list) -> np.ndarray:
        o, h, l, c, v = prices
        qv, trades, tbb, tbq, spread = opt
        whole = len(rows) == len(self._symbols) and (rows == np.arange(len(rows))).all()
        M = self._M[:, :len(rows)] if whole else self._M[:, rows]  # a view needs no write-back
        feats = vector_step(M, o, h, l, c, v, qv, tbb, tbq, trades, spread).T
        if not whole:
            self._M[:, rows] = M
        self._count[rows] += 1
        self._last[rows] = t
        self._last_close[rows] = c
        self._has_opt[rows] = ~np.isnan(np.column_stack([qv, tbb, tbq, trades]))
        pos = self._win_pos[rows]
        self._win[rows, pos] = feats
        self._win_pos[rows] = (pos + 1) % WINDOW
        self._win_size[rows] = np.minimum(self._win_size[rows] + 1, WINDOW)
        return feats

    def _scalar_update(self, row: int, symbol: str, t: int, prices: list, opt: list) -> np.ndarray:
        state = self.state(symbol) if self._vec[row] else self._scalar[row]
        qv, trades, tbb, tbq, spread = (None if math.isnan(x) else float(x) for x in opt)
        candle = Candle(symbol, self.timeframe, t, *map(float, prices), qv,
                        None if trades is None else int(trades), tbb, tbq, spread)
        vec = state.update(candle)
        self._store(row, state, copy=False)  # state is already the bank's own object or a fresh copy
        return vec
