"""The derived ML Layer-1 features (everything after the raw candle fields), one candle at a time.

Definitions (docs/features.md has the full list and the reasons):

- ``log_return_k = ln(close / close k candles ago)``
- ``volatility_n``: sample standard deviation (ddof=1) of the last n one-candle log returns
- ``sma_n_norm``/``ema_n_norm = (close - MA) / close``; the EMA is seeded like TA-Lib's
- ``rsi_14``: Wilder RSI / 100
- ``volume_sma_ratio = volume / SMA20(volume)``, 1.0 when the 20 volumes are all zero
- ``vwap_deviation = (close - VWAP20) / close`` with VWAP20 = sum(tp * volume) / sum(volume)
  over 20 candles, tp = (high + low + close) / 3; the mean tp when no volume traded
- ``price_position = (close - low) / (high - low)``, 0.5 for a flat candle

>>> f = Layer1(); out = []
>>> f.step(3.0, 1.0, 2.0, 10.0, out)
>>> len(out), out[-1]
(16, 0.5)
"""

from __future__ import annotations

import math

from features.base import Block
from features.rolling import Lag, RollingSum, RollingVar
from features.smoothing import Ema, WilderRsi

__all__ = ["Layer1"]

NAN = float("nan")
VWAP_WINDOW = 20
VOLUME_WINDOW = 20


class Layer1(Block):
    __slots__ = ("count", "closes", "rv5", "rv15", "rv30", "s5", "s15", "s30", "e5", "e15", "e30",
                 "rsi", "vol", "tpv", "tp")
    _scalars = ("count",)
    _parts = ("closes", "rv5", "rv15", "rv30", "s5", "s15", "s30", "e5", "e15", "e30",
              "rsi", "vol", "tpv", "tp")

    def __init__(self) -> None:
        self.count = 0
        self.closes = Lag(16)  # close now and up to 15 candles ago
        self.rv5, self.rv15, self.rv30 = RollingVar(5), RollingVar(15), RollingVar(30)
        self.s5, self.s15, self.s30 = RollingSum(5), RollingSum(15), RollingSum(30)
        self.e5, self.e15, self.e30 = Ema(5), Ema(15), Ema(30)
        self.rsi = WilderRsi(14)
        self.vol = RollingSum(VOLUME_WINDOW)
        self.tpv = RollingSum(VWAP_WINDOW)
        self.tp = RollingSum(VWAP_WINDOW)

    def step(self, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        """Append the 16 derived features for this candle to ``out``."""
        self.count += 1
        count = self.count
        closes = self.closes
        closes.push(c)
        log = math.log
        if count > 1:
            r1 = log(c / closes.ago(1))
            for rv in (self.rv5, self.rv15, self.rv30):
                rv.push(r1)
        else:
            r1 = NAN
        out.append(r1)
        out.append(log(c / closes.ago(5)) if count > 5 else NAN)
        out.append(log(c / closes.ago(15)) if count > 15 else NAN)
        for rv in (self.rv5, self.rv15, self.rv30):
            out.append(math.sqrt(rv.var(1)) if rv.full else NAN)
        for s in (self.s5, self.s15, self.s30):
            s.push(c)
            out.append((c - (s.ref + s.s1 / s.n)) / c if s.size == s.n else NAN)  # s.mean, inlined
        for e in (self.e5, self.e15, self.e30):
            out.append((c - e.push(c)) / c)  # NaN until seeded, since NaN propagates
        out.append(self.rsi.push(c))

        vol, tpv, tps = self.vol, self.tpv, self.tp
        tp = (h + l + c) / 3.0
        vol.push(v)
        tpv.push(tp * v)
        tps.push(tp)
        if vol.size == VOLUME_WINDOW:  # .s and .mean of the sums, inlined
            ref, s1 = vol.ref, vol.s1
            total = ref * VOLUME_WINDOW + s1
            if total > 0.0:
                out.append(v / (ref + s1 / VOLUME_WINDOW))
                vwap = (tpv.ref * VWAP_WINDOW + tpv.s1) / total
            else:
                out.append(1.0)
                vwap = tps.ref + tps.s1 / VWAP_WINDOW
            out.append((c - vwap) / c)
        else:
            out += (NAN, NAN)
        out.append((c - l) / (h - l) if h > l else 0.5)
