"""FeatureBank: the feature states of many symbols of one timeframe, updated a batch at a time.

Equivalent to one :class:`FeatureState` per symbol, and bit-identical to it, but a batch of
candles of distinct symbols is folded in with numpy operations over all of them at once
(:mod:`._vstep`), which amortises Python's per-candle cost across the batch.

Routing: a symbol whose state has passed warm-up (``READY_AFTER`` candles) and whose candle
follows its last one without a gap takes the vectorised path. Every other case (warm-up, a gap
to fill, a stale history to restart) is rare and takes the scalar path: that symbol's
``FeatureState.update`` itself, so the messy-feed rules cannot drift apart. A symbol's state
therefore lives either in the bank's matrix (one column) or as a FeatureState object, and moves
to the matrix once it is warm (where and how: :class:`~features._bank_store.BankStore`, which this
class extends with the updates).

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
from collections.abc import Mapping, Sequence

import numpy as np

from core.candle import Candle
from core.errors import InvalidInput, OutOfOrder
from features._bank_store import BankStore
from features._vstep import vector_step
from features.names import N_FEATURES
from features.state import WINDOW, FeatureState

__all__ = ["FeatureBank"]


def _column(x, n: int, name: str) -> np.ndarray:
    """An optional input as float64; None means the feed lacks it for every candle (NaN)."""
    if x is None:
        return np.full(n, np.nan)
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (n,):
        raise InvalidInput(f"{name} has shape {a.shape}, expected ({n},)")
    return a


class FeatureBank(BankStore):
    """Per-symbol feature states of one timeframe; ``update_many`` folds in one candle per symbol."""

    @classmethod
    def from_states(cls, states: Mapping[str, FeatureState], timeframe: str) -> FeatureBank:
        """A bank holding a copy of each ``symbol -> FeatureState``."""
        bank = cls(timeframe, capacity=len(states))
        for symbol, state in states.items():
            bank.set_state(symbol, state)
        return bank

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
