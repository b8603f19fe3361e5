"""The candle: the one input type of the pipeline, and its validation.

A candle arrives as an Avro record (a dict); :func:`candle_from_record` turns it into a
:class:`Candle` or raises :class:`~core.errors.InvalidInput` with the reason, which the
candle agent sends to the dead-letter topic.

>>> c = candle_from_record({"symbol": "ETH-BTC", "timeframe": "5m", "open_time": 1515560100000,
...     "open": 0.0984, "high": 0.0995, "low": 0.0982, "close": 0.0994, "volume": 1820.5})
>>> c.symbol, c.close, c.trades
('ETH-BTC', 0.0994, None)
>>> candle_from_record({**c.to_record(), "high": 0.09})
Traceback (most recent call last):
...
core.errors.InvalidInput: high 0.09 is below the candle's open, close or low
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from core.errors import InvalidInput

__all__ = ["Candle", "candle_from_record", "SYMBOL_CHARACTERS", "TIMEFRAME_MS", "timeframe_ms", "valid_symbol"]

TIMEFRAME_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
    "12h": 43_200_000, "1d": 86_400_000,
}

_OPTIONAL_FLOATS = ("quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume", "spread_bps")


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle of ``timeframe`` in milliseconds.

    >>> timeframe_ms("5m")
    300000
    """
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise InvalidInput(f"unknown timeframe {timeframe!r} (known: {', '.join(TIMEFRAME_MS)})") from None


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle. ``open_time`` is epoch milliseconds (UTC); optional fields are None when the feed lacks them."""

    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float | None = None
    trades: int | None = None
    taker_buy_base_volume: float | None = None
    taker_buy_quote_volume: float | None = None
    spread_bps: float | None = None

    def to_record(self) -> dict[str, Any]:
        """The Avro record (schemas/candle.avsc) for this candle."""
        return asdict(self)


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"{name} is not finite ({value})")
    return value


_INF = math.inf  # a module global: cheaper to look up than math.inf in the per-candle check
# A symbol: 1-64 of letters, digits and . _ : / = ^ + # @ - (BTC-USDT, ETH/BTC, BRK.B, ES=F, ^GSPC, EUR_USD).
# No spaces, control characters (a NUL is refused by PostgreSQL) or "|" (it separates a series key's parts).
SYMBOL_CHARACTERS = "letters, digits and . _ : / = ^ + # @ -"
_symbol_ok = re.compile(r"[A-Za-z0-9._:/=^+#@-]{1,64}").fullmatch


def valid_symbol(symbol: object) -> bool:
    """True for a symbol of the documented character set and length.

    >>> [valid_symbol(s) for s in ("BTC-USDT", "ETH/BTC", "^GSPC", "", "ETH BTC", "ETH\\x00BTC", "A|B", "X" * 65)]
    [True, True, True, False, False, False, False, False]
    """
    return type(symbol) is str and _symbol_ok(symbol) is not None


def candle_from_record(record: Mapping[str, Any]) -> Candle:
    """Validate an Avro candle record and build a :class:`Candle`; raise InvalidInput with the reason."""
    candle = _valid_as_decoded(record)
    return candle if candle is not None else _validated(record)


def _valid_as_decoded(record: Mapping[str, Any]) -> Candle | None:
    """The candle of a record that is plainly valid as the Avro decoder returns one (floats for doubles,
    every price finite, positive and consistent), else None: :func:`_validated` then says what is wrong.
    A replay or a busy worker decodes every candle, and this check is a third of the full one's cost."""
    symbol, timeframe, open_time = record.get("symbol"), record.get("timeframe"), record.get("open_time")
    o, h, l, c, v = (record.get("open"), record.get("high"), record.get("low"), record.get("close"),
                     record.get("volume"))
    if not (type(symbol) is str and _symbol_ok(symbol) and type(open_time) is int and open_time >= 0
            and type(o) is float and type(h) is float and type(l) is float and type(c) is float and type(v) is float
            and 0.0 < l <= o <= h < _INF and l <= c <= h and 0.0 <= v < _INF):  # NaN fails every comparison
        return None
    step = TIMEFRAME_MS.get(timeframe) if type(timeframe) is str else None
    if step is None or open_time % step:
        return None
    qv, tbb, tbq, spread, trades = (record.get("quote_volume"), record.get("taker_buy_base_volume"),
                                    record.get("taker_buy_quote_volume"), record.get("spread_bps"), record.get("trades"))
    for value in (qv, tbb, tbq, spread):
        if value is not None and not (type(value) is float and 0.0 <= value < _INF):
            return None
    if trades is not None and not (type(trades) is int and trades >= 0):
        return None
    return Candle(symbol, timeframe, open_time, o, h, l, c, v, qv, trades, tbb, tbq, spread)


def _validated(record: Mapping[str, Any]) -> Candle:
    """The full check, for any mapping (ints for prices, missing fields): raises with the first reason."""
    symbol = record.get("symbol")
    if not valid_symbol(symbol):
        raise InvalidInput(f"symbol must be 1 to 64 of {SYMBOL_CHARACTERS}, got {symbol!r:.80}")
    timeframe = record.get("timeframe")
    if not isinstance(timeframe, str) or timeframe not in TIMEFRAME_MS:
        raise InvalidInput(f"unknown timeframe {timeframe!r:.40}")
    open_time = record.get("open_time")
    if isinstance(open_time, bool) or not isinstance(open_time, int) or open_time < 0:
        raise InvalidInput(f"open_time must be a non-negative integer of epoch milliseconds, got {open_time!r:.40}")
    if open_time % TIMEFRAME_MS[timeframe]:
        raise InvalidInput(f"open_time {open_time} is not aligned to the {timeframe} timeframe")
    o, h, l, c = (_finite(k, record.get(k)) for k in ("open", "high", "low", "close"))
    if min(o, h, l, c) <= 0:
        raise InvalidInput(f"prices must be positive (open={o}, high={h}, low={l}, close={c})")
    if h < max(o, c, l):
        raise InvalidInput(f"high {h} is below the candle's open, close or low")
    if l > min(o, c):
        raise InvalidInput(f"low {l} is above the candle's open or close")
    volume = _finite("volume", record.get("volume"))
    if volume < 0:
        raise InvalidInput(f"volume must not be negative ({volume})")
    optional: dict[str, Any] = {}
    for name in _OPTIONAL_FLOATS:
        value = record.get(name)
        if value is not None:
            value = _finite(name, value)
            if value < 0:
                raise InvalidInput(f"{name} must not be negative ({value})")
        optional[name] = value
    trades = record.get("trades")
    if trades is not None and (isinstance(trades, bool) or not isinstance(trades, int) or trades < 0):
        raise InvalidInput(f"trades must be a non-negative integer, got {trades!r:.40}")
    return Candle(symbol, timeframe, open_time, o, h, l, c, volume, trades=trades, **optional)
