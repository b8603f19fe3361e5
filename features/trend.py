"""MACD(12, 26, 9), ATR(14) and ADX(14), one candle at a time, as TA-Lib computes them.

TA-Lib's quirks are kept on purpose so the values match it: MACD seeds its fast EMA late
(with the SMA of the 12 closes ending where the slow EMA starts) and emits all three lines
only once the signal is seeded; ATR and ADX use Wilder's smoothing with TA-Lib's seeds and
its order of operations; ADX keeps its value when the directional movement is zero.

>>> a = Atr(2)
>>> [a.push(h, l, c) for h, l, c in ((2.0, 1.0, 1.5), (3.0, 2.0, 2.5), (2.5, 1.5, 2.0), (2.0, 2.0, 2.0))]
[nan, nan, 1.25, 0.625]
"""

from __future__ import annotations

from features.base import Block
from features.rolling import Lag
from features.smoothing import Ema

__all__ = ["Adx", "Atr", "Macd", "true_range"]

NAN = float("nan")


def true_range(h: float, l: float, prev_close: float) -> float:
    r = h - l
    up = abs(prev_close - h)
    down = abs(prev_close - l)
    if up > r:
        r = up
    return down if down > r else r


class Macd(Block):
    __slots__ = ("count", "closes", "slow", "fast", "signal")
    _scalars = ("count",)
    _parts = ("closes", "slow", "fast", "signal")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.count = 0
        self.closes = Lag(fast)
        self.slow, self.fast, self.signal = Ema(slow), Ema(fast), Ema(signal)

    def step(self, c: float, out: list[float]) -> None:
        self.count += 1
        self.closes.push(c)
        slow = self.slow.push(c)
        if self.count < self.slow.n:
            out += (NAN, NAN, NAN)
            return
        fast = self.fast
        if self.count == self.slow.n:
            acc = 0.0
            for x in self.closes.oldest_first():  # TA-Lib sums the seed oldest first
                acc += x
            fast.seed(acc / fast.n, fast.n)
        else:
            fast.push(c)
        line = fast.value - slow
        signal = self.signal.push(line)
        if signal != signal:  # NaN: TA-Lib emits nothing until the signal is seeded
            out += (NAN, NAN, NAN)
        else:
            out += (line, signal, line - signal)


class Atr(Block):
    __slots__ = ("n", "count", "prev_close", "value")
    _scalars = ("count", "prev_close", "value")

    def __init__(self, n: int = 14) -> None:
        self.n = n
        self.count = 0
        self.prev_close = NAN
        self.value = 0.0

    def push(self, h: float, l: float, c: float) -> float:
        self.count += 1
        prev, self.prev_close = self.prev_close, c
        if self.count == 1:
            return NAN
        tr = true_range(h, l, prev)
        n = self.n
        if self.count <= n + 1:
            self.value += tr  # the seed is the plain average of the first n true ranges
            if self.count <= n:
                return NAN
            self.value /= n
            return self.value
        self.value = (self.value * (n - 1) + tr) / n
        return self.value


class Adx(Block):
    __slots__ = ("n", "count", "ph", "pl", "pc", "plus_dm", "minus_dm", "tr", "sum_dx", "adx")
    _scalars = ("count", "ph", "pl", "pc", "plus_dm", "minus_dm", "tr", "sum_dx", "adx")

    def __init__(self, n: int = 14) -> None:
        self.n = n
        self.count = 0
        self.ph = self.pl = self.pc = NAN
        self.plus_dm = self.minus_dm = self.tr = self.sum_dx = 0.0
        self.adx = NAN

    def push(self, h: float, l: float, c: float) -> float:
        self.count += 1
        count, n = self.count, self.n
        diff_p, diff_m = h - self.ph, self.pl - l
        tr = true_range(h, l, self.pc)
        self.ph, self.pl, self.pc = h, l, c
        if count == 1:
            return NAN
        if count > n:  # past the seed sums: Wilder-decay the running sums first
            self.minus_dm -= self.minus_dm / n
            self.plus_dm -= self.plus_dm / n
            self.tr = self.tr - self.tr / n + tr
        else:
            self.tr += tr
        if diff_m > 0 and diff_p < diff_m:
            self.minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            self.plus_dm += diff_p
        if count <= n:
            return NAN
        dx = NAN
        if self.tr != 0.0:
            minus_di = 100.0 * (self.minus_dm / self.tr)
            plus_di = 100.0 * (self.plus_dm / self.tr)
            total = minus_di + plus_di
            if total != 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        if count <= 2 * n:
            if dx == dx:
                self.sum_dx += dx
            if count < 2 * n:
                return NAN
            self.adx = self.sum_dx / n
        elif dx == dx:  # no movement at all: TA-Lib keeps the last ADX
            self.adx = (self.adx * (n - 1) + dx) / n
        return self.adx
