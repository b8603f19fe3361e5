"""A real candle series whose market changes character at a chosen candle: drift to test the learning loop on.

From candle ``start`` on, every other candle is mirrored (its log move from the previous close, and its
open, high and low around that close, change sign), while the rest keep their shape. Each candle's size,
range and volume stay real; what changes is the sign of the lag-1 return autocorrelation: a market that
mean-reverted now trends, and the reverse. A model that learned the old relation between recent moves
and the next one is then wrong more often than right, which is what a regime change does to a model.

The prices are rebuilt from the moves, so the series stays continuous and every candle stays valid
(high the highest, low the lowest; mirrored candles swap their taker buy and sell volumes).

>>> from core.candle import Candle
>>> up = [Candle("X", "5m", 300_000 * i, 1.0 * 1.01 ** i, 1.0 * 1.01 ** (i + 1) * 1.001,
...              1.0 * 1.01 ** i * 0.999, 1.0 * 1.01 ** (i + 1), 10.0) for i in range(6)]
>>> changed = alternate_moves(up, start=2)
>>> [round(c.close / up[0].open, 4) for c in changed]     # +1 %, +1 %, then -1 %, +1 %, -1 %, +1 %
[1.01, 1.0201, 1.01, 1.0201, 1.01, 1.0201]
>>> all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in changed)
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from core.candle import Candle

__all__ = ["alternate_moves"]


def alternate_moves(candles: Sequence[Candle], start: int) -> list[Candle]:
    """``candles`` (one series, in time order) with the moves of candles ``start``, ``start + 2``, ... mirrored."""
    if not 0 <= start <= len(candles):
        raise ValueError(f"start {start} is outside the series (0..{len(candles)})")
    out = list(candles[:start])
    prev_real = candles[start - 1].close if start else candles[0].open
    prev_new = prev_real
    for i, c in enumerate(candles[start:]):
        sign = -1.0 if i % 2 == 0 else 1.0

        def move(price: float) -> float:  # the price's log distance from the previous close, signed
            return prev_new * math.exp(sign * math.log(price / prev_real))

        o, h, l, cl = move(c.open), move(c.high), move(c.low), move(c.close)
        if sign < 0:
            h, l = l, h  # mirrored: the old low is the new high
        fields = {"open": o, "high": max(h, o, cl), "low": min(l, o, cl), "close": cl}
        if sign < 0 and c.taker_buy_base_volume is not None:
            fields["taker_buy_base_volume"] = max(c.volume - c.taker_buy_base_volume, 0.0)
        if sign < 0 and c.taker_buy_quote_volume is not None and c.quote_volume is not None:
            fields["taker_buy_quote_volume"] = max(c.quote_volume - c.taker_buy_quote_volume, 0.0)
        out.append(dataclasses.replace(c, **fields))
        prev_real, prev_new = c.close, cl
    return out
