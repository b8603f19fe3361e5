"""Bollinger %B and width, Stochastic, Williams %R, CCI, MFI, ROC and OBV, one candle at a time.

Values and units are TA-Lib's, including what TA-Lib returns when a window is degenerate
(a flat range gives %K = %R = CCI = 0; no money flow gives MFI = 0; see docs/features.md).
Bollinger %B is not a TA-Lib output: it is (close - lower) / (upper - lower) from TA-Lib's
bands, 0.5 when the bands collapse; width is (upper - lower) / middle.

>>> o = Oscillators(); out = []
>>> o.step(2.0, 1.0, 1.5, 100.0, out)
>>> len(out), out[6], out[-1]   # OBV starts at the first volume; roc_10 is warming up
(11, 100.0, nan)
"""

from __future__ import annotations

import math

from features.base import Block
from features.rolling import Lag, RollingMax, RollingMin, RollingSum, RollingVar

__all__ = ["Oscillators"]

NAN = float("nan")
MFI_DEAD_ZONE = 1e-14  # relative; TA-Lib >= 0.6


class Oscillators(Block):
    __slots__ = ("count", "bb", "hh", "ll", "fast_k", "slow_k", "cci_tp", "prev_tp", "mf_pos", "mf_neg",
                 "closes", "obv")
    _scalars = ("count", "prev_tp", "obv")
    _parts = ("bb", "hh", "ll", "fast_k", "slow_k", "cci_tp", "mf_pos", "mf_neg", "closes")

    def __init__(self) -> None:
        self.count = 0
        self.bb = RollingVar(20)
        self.hh, self.ll = RollingMax(14), RollingMin(14)
        self.fast_k, self.slow_k = Lag(3), Lag(3)
        self.cci_tp = RollingSum(20)
        self.prev_tp = NAN
        self.mf_pos, self.mf_neg = RollingSum(14), RollingSum(14)
        self.closes = Lag(11)  # close now and 10 candles ago, for ROC
        self.obv = 0.0

    def step(self, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        """Append bb_percent_b .. roc_10 to ``out``; atr_14 and adx_14 are NaN slots the state fills."""
        self.count += 1
        count = self.count

        bb = self.bb
        bb.push(c)
        if bb.size == 20:  # bb.full
            m2 = bb.m2
            sd = math.sqrt(m2 / 20) if m2 > 0.0 else 0.0  # bb.var(0), inlined
            mid = bb.ref + bb.s1 / 20  # bb.mean
            lower, upper = mid - 2.0 * sd, mid + 2.0 * sd
            out += ((c - lower) / (upper - lower) if upper > lower else 0.5, (upper - lower) / mid)
        else:
            out += (NAN, NAN)
        out.append(NAN)  # atr_14 slot, filled in by the state from the trend block

        # Stochastic(14, 3, 3) with SMA smoothing, and Williams %R(14), over one max/min pair
        self.hh.push(h)
        self.ll.push(l)
        k = d = willr = NAN
        if count >= 14:
            hh, ll = self.hh.value, self.ll.value
            diff = (hh - ll) / 100.0
            self.fast_k.push((c - ll) / diff if diff != 0.0 else 0.0)
            willr = (hh - c) / (hh - ll) * -100.0 if hh != ll else 0.0
            if count >= 16:
                fk = self.fast_k.buf
                self.slow_k.push((fk[self.fast_k.pos] + fk[self.fast_k.pos - 2] + fk[self.fast_k.pos - 1]) / 3.0)
                if count >= 18:
                    sk = self.slow_k
                    k = sk.ago(0)
                    d = (sk.buf[sk.pos] + sk.buf[sk.pos - 2] + sk.buf[sk.pos - 1]) / 3.0
        out += (k, d, NAN)  # adx_14 slot, filled in by the state

        out.append(self.obv_step(c, v, count))  # before closes.push: it needs the previous close

        tp = (h + l + c) / 3.0
        prev_tp, self.prev_tp = self.prev_tp, tp
        if count > 1:
            flow = tp * v
            change = tp - prev_tp
            # TA-Lib's dead zone: (h + l + c) / 3 of the same prices can differ in the last bit,
            # which is no move at all.
            if abs(change) <= MFI_DEAD_ZONE * (abs(tp) + abs(prev_tp)):
                change = 0.0
            self.mf_pos.push(flow if change > 0.0 else 0.0)
            self.mf_neg.push(flow if change < 0.0 else 0.0)
        if count > 14:
            pos, neg = self.mf_pos, self.mf_neg
            up = pos.ref * 14 + pos.s1  # pos.s, inlined
            total = up + (neg.ref * 14 + neg.s1)
            out.append(100.0 * (up / total) if total > 0.0 else 0.0)
        else:
            out.append(NAN)

        cci = self.cci_tp
        cci.push(tp)
        if cci.size == 20:
            mean = cci.ref + cci.s1 / 20  # cci.mean
            dev = 0.0
            for x in cci.buf:  # mean absolute deviation: inherently one pass over the 20 values
                dev += abs(x - mean)
            diff = tp - mean
            out.append(diff / (0.015 * (dev / 20)) if diff != 0.0 and dev != 0.0 else 0.0)
        else:
            out.append(NAN)

        out.append(willr)
        closes = self.closes
        closes.push(c)
        if count > 10:
            prev = closes.ago(10)
            out.append((c / prev - 1.0) * 100.0 if prev != 0.0 else 0.0)
        else:
            out.append(NAN)

    def obv_step(self, c: float, v: float, count: int) -> float:
        if count == 1:
            self.obv = v
        else:
            prev = self.closes.ago(0)  # the previous close: this candle's is pushed later
            if c > prev:
                self.obv += v
            elif c < prev:
                self.obv -= v
        return self.obv
