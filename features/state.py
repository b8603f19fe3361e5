"""FeatureState: every feature of one (symbol, timeframe), updated one candle at a time.

Rules for messy feeds (docs/features.md):

- a candle not newer than the last one raises :class:`~core.errors.OutOfOrder` and leaves
  the state untouched (duplicates and late candles alike);
- a gap of up to ``MAX_FILLED_GAP`` missing candles is filled with flat zero-volume candles at
  the last close, which is what exchanges emit for intervals without trades, so every window
  spans the time it claims to; a longer gap means the history is stale, and the state starts
  over (warm-up again) from the new candle;
- optional inputs the feed lacks are NaN, never zero.

>>> from core.candle import Candle
>>> state = FeatureState()
>>> for i in range(40):
...     vec = state.update(Candle("ETH-BTC", "1m", 60_000 * i, 1.0, 1.2, 0.9, 1.0 + i / 100, 5.0))
>>> state.ready, state.count, vec.shape, state.window(60).shape
(True, 40, (41,), (40, 41))
>>> state.update(Candle("ETH-BTC", "1m", 60_000 * 39, 1.0, 1.2, 0.9, 1.0, 5.0))
Traceback (most recent call last):
...
core.errors.OutOfOrder: candle open_time 2340000 is not after the last one (2340000)
>>> restored = FeatureState.from_bytes(state.to_bytes())
>>> nxt = Candle("ETH-BTC", "1m", 60_000 * 40, 1.0, 1.2, 0.9, 1.3, 5.0)
>>> np.array_equal(restored.update(nxt), state.update(nxt), equal_nan=True)
True
"""

from __future__ import annotations

import numpy as np

from core.candle import Candle, timeframe_ms
from core.errors import InvalidInput, OutOfOrder
from features.codec import decode, encode
from features.layer1 import Layer1
from features.names import INDEX, N_FEATURES, READY_AFTER
from features.oscillators import Oscillators
from features.trend import Adx, Atr, Macd
from features.window import WINDOW, window_buffer

__all__ = ["MAX_FILLED_GAP", "WINDOW", "FeatureState"]

NAN = float("nan")
MAX_FILLED_GAP = 60  # missing candles filled in; beyond this the state restarts
_ATR, _ADX = INDEX["atr_14"], INDEX["adx_14"]


def _opt(x: float | None) -> float:
    return NAN if x is None else float(x)


class FeatureState:
    """Rolling features of one series; see the module docstring for the rules."""

    __slots__ = ("count", "last_open_time", "step_ms", "last_close", "has_optional",
                 "layer1", "macd", "osc", "atr", "adx", "_win", "_win_pos", "_win_size")

    def __init__(self) -> None:
        self.count = 0
        self.last_open_time: int | None = None
        self.step_ms = 0
        self.last_close = NAN
        self.has_optional = (False, False, False, False)  # quote volume, taker base, taker quote, trades
        self.layer1 = Layer1()
        self.macd = Macd()
        self.osc = Oscillators()
        self.atr = Atr(14)
        self.adx = Adx(14)
        self._win = window_buffer(1)  # a ring of WINDOW rows once full; it never wraps before
        self._win_pos = 0
        self._win_size = 0

    @property
    def ready(self) -> bool:
        """True once every feature has a full window (``READY_AFTER`` candles of history)."""
        return self.count >= READY_AFTER

    def window(self, k: int = WINDOW) -> np.ndarray:
        """The last ``min(k, count)`` feature vectors, oldest first, as float32."""
        k = min(k, self._win_size)
        idx = (np.arange(self._win_pos - k, self._win_pos)) % WINDOW
        return self._win[idx]

    def update(self, candle: Candle) -> np.ndarray:
        """Fold ``candle`` in and return its feature vector (float64, NaN while warming up)."""
        t = candle.open_time
        last = self.last_open_time
        if last is None:
            self.step_ms = timeframe_ms(candle.timeframe)
        else:
            if t <= last:
                raise OutOfOrder(f"candle open_time {t} is not after the last one ({last})")
            if timeframe_ms(candle.timeframe) != self.step_ms:
                raise InvalidInput(f"candle timeframe {candle.timeframe} differs from this state's "
                                   f"{self.step_ms} ms candles")
            missing = (t - last) // self.step_ms - 1
            if missing > MAX_FILLED_GAP:
                step_ms = self.step_ms
                self.__init__()  # stale history: start a fresh warm-up
                self.step_ms = step_ms
            elif missing > 0:
                self._fill(missing)
        self.last_open_time = t
        qv, tbb, tbq, tr = (candle.quote_volume, candle.taker_buy_base_volume,
                            candle.taker_buy_quote_volume, candle.trades)
        self.has_optional = (qv is not None, tbb is not None, tbq is not None, tr is not None)
        return self._step(candle.open, candle.high, candle.low, candle.close, candle.volume,
                          _opt(qv), _opt(tbb), _opt(tbq), _opt(tr), _opt(candle.spread_bps))

    def _fill(self, missing: int) -> None:
        c = self.last_close
        qv, tbb, tbq, tr = (0.0 if present else NAN for present in self.has_optional)
        for _ in range(missing):
            self._step(c, c, c, c, 0.0, qv, tbb, tbq, tr, NAN)

    def _step(self, o: float, h: float, l: float, c: float, v: float,
              qv: float, tbb: float, tbq: float, trades: float, spread: float) -> np.ndarray:
        self.count += 1
        self.last_close = c
        if tbb != tbb:
            ratio = NAN
        else:
            ratio = tbb / v if v > 0.0 else 0.5  # no volume: neither side dominated
        out = [o, h, l, c, v, qv, tbb, tbq, trades, spread, ratio]
        self.layer1.step(h, l, c, v, out)
        self.macd.step(c, out)
        self.osc.step(h, l, c, v, out)
        out[_ATR] = self.atr.push(h, l, c)
        out[_ADX] = self.adx.push(h, l, c)
        vec = np.array(out, dtype=np.float64)
        if self._win_pos == len(self._win) < WINDOW:  # not yet wrapped: the rows so far are [0, pos)
            grown = window_buffer(self._win_pos + 1)
            grown[:self._win_pos] = self._win
            self._win = grown
        self._win[self._win_pos] = vec
        self._win_pos = self._win_pos + 1 if self._win_pos + 1 < WINDOW else 0
        if self._win_size < WINDOW:
            self._win_size += 1
        return vec

    def to_bytes(self) -> bytes:
        """Compact, versioned serialisation (a table value); see :mod:`.codec`."""
        return encode(self)

    @classmethod
    def from_bytes(cls, blob: bytes) -> FeatureState:
        """Rebuild a state from :meth:`to_bytes`; it continues bit-identically."""
        return decode(blob, cls)
