"""Recursive smoothers with TA-Lib's seeding, shared by the Layer-1 features and MACD.

Both seed with a plain average of the first ``n`` inputs and only then recurse, exactly as
TA-Lib does (default compatibility, no unstable period), so an EMA here equals ``talib.EMA``
and the RSI equals ``talib.RSI / 100`` value for value.

>>> e = Ema(3)
>>> [round(e.push(x), 3) for x in (1.0, 2.0, 3.0, 4.0)]
[nan, nan, 2.0, 3.0]
>>> r = WilderRsi(2)
>>> [round(r.push(x), 3) for x in (1.0, 2.0, 1.5, 2.5)]
[nan, nan, 0.667, 0.857]
"""

from __future__ import annotations

from features.base import Block

__all__ = ["Ema", "WilderRsi"]

NAN = float("nan")


class Ema(Block):
    """Exponential moving average, k = 2 / (n + 1), seeded with the SMA of the first n values."""

    __slots__ = ("n", "k", "count", "acc", "value")
    _scalars = ("count", "acc", "value")

    def __init__(self, n: int) -> None:
        self.n = n
        self.k = 2.0 / (n + 1)
        self.count = 0
        self.acc = 0.0
        self.value = NAN

    def seed(self, value: float, count: int) -> None:
        """Start the recursion from ``value`` (MACD seeds its fast EMA late, as TA-Lib does)."""
        self.value, self.count = value, count

    def push(self, x: float) -> float:
        self.count += 1
        if self.count > self.n:
            # TA-Lib's form (x - prev) * k + prev, so results match it to the last bit
            self.value = (x - self.value) * self.k + self.value
        else:
            self.acc += x
            if self.count == self.n:
                self.value = self.acc / self.n
        return self.value


class WilderRsi(Block):
    """RSI with Wilder smoothing (alpha = 1/n), scaled to 0..1; 0.5 when prices did not move at all."""

    __slots__ = ("n", "count", "prev", "gain", "loss")
    _scalars = ("count", "prev", "gain", "loss")

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.prev = NAN
        self.gain = 0.0
        self.loss = 0.0

    def push(self, c: float) -> float:
        self.count += 1
        d = c - self.prev
        self.prev = c
        if self.count == 1:
            return NAN
        n = self.n
        if self.count > n + 1:
            self.gain *= n - 1
            self.loss *= n - 1
        if d < 0:
            self.loss -= d
        else:
            self.gain += d
        if self.count < n + 1:
            return NAN  # still summing the first n changes
        self.gain /= n
        self.loss /= n
        total = self.gain + self.loss
        return self.gain / total if total > 0.0 else 0.5
