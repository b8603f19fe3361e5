"""Higher timeframes from 1-minute candles: tumbling windows that emit only closed candles.

A target candle [T, T + tf) is closed, and emitted, when its last minute arrives or when a minute of
a later window arrives (the feed skipped the end of the window). Nothing is emitted for a window
still open, so a 5m candle never changes after it is published.

>>> agg = CandleAggregator("5m")
>>> minutes = [Candle("ETH-BTC", "1m", 60_000 * i, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 1.0) for i in range(6)]
>>> [c for m in minutes[:4] for c in agg.add(m)]
[]
>>> closed = agg.add(minutes[4])
>>> closed[0].timeframe, closed[0].open, closed[0].high, closed[0].low, closed[0].close, closed[0].volume
('5m', 10.0, 15.0, 9.0, 14.5, 5.0)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from core.candle import TIMEFRAME_MS, Candle, timeframe_ms
from core.errors import InvalidInput, OutOfOrder

__all__ = ["CandleAggregator", "aggregate"]

_SUMMED = ("quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume")


def _add_optional(a: float | int | None, b: float | int | None) -> float | int | None:
    # A window's optional total is known only if every minute carried it.
    return None if a is None or b is None else a + b


def aggregate(window_open: Candle, minute: Candle) -> Candle:
    """Fold one more minute into a partial window candle."""
    return replace(
        window_open,
        high=max(window_open.high, minute.high),
        low=min(window_open.low, minute.low),
        close=minute.close,
        volume=window_open.volume + minute.volume,
        spread_bps=minute.spread_bps,  # the spread at the window's close
        **{name: _add_optional(getattr(window_open, name), getattr(minute, name)) for name in _SUMMED},
    )


@dataclass
class CandleAggregator:
    """Builds ``timeframe`` candles of one symbol from its 1m candles, in order."""

    timeframe: str
    partial: Candle | None = None
    last_minute: int | None = None

    def __post_init__(self) -> None:
        if timeframe_ms(self.timeframe) <= TIMEFRAME_MS["1m"]:
            raise InvalidInput(f"cannot aggregate 1m candles into {self.timeframe}")

    def add(self, minute: Candle) -> list[Candle]:
        """Take the next 1m candle; return the candles this closes (zero or one)."""
        if minute.timeframe != "1m":
            raise InvalidInput(f"the aggregator takes 1m candles, got {minute.timeframe}")
        if self.last_minute is not None and minute.open_time <= self.last_minute:
            raise OutOfOrder(f"1m candle {minute.open_time} is not after the last one ({self.last_minute})")
        self.last_minute = minute.open_time
        size = timeframe_ms(self.timeframe)
        start = minute.open_time - minute.open_time % size
        closed: list[Candle] = []
        if self.partial is not None and self.partial.open_time != start:
            closed.append(self.partial)  # a later window began: the earlier one is over
            self.partial = None
        as_window = replace(minute, timeframe=self.timeframe, open_time=start)
        self.partial = as_window if self.partial is None else aggregate(self.partial, minute)
        if minute.open_time + TIMEFRAME_MS["1m"] == start + size:  # its last minute: closed now
            closed.append(self.partial)
            self.partial = None
        return closed

    def to_bytes(self) -> bytes:
        return json.dumps({"timeframe": self.timeframe, "last_minute": self.last_minute,
                           "partial": asdict(self.partial) if self.partial else None}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "CandleAggregator":
        raw = json.loads(data)
        partial = Candle(**raw["partial"]) if raw["partial"] else None
        return cls(raw["timeframe"], partial, raw["last_minute"])
