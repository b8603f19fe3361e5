"""The key of one series (a symbol and a timeframe) in tables, books and caches: one home, made and split here.

A symbol never holds ``|`` (core/candle.py), so the key splits back unambiguously.
"""

from __future__ import annotations

__all__ = ["series_key", "split_series_key"]


def series_key(symbol: str, timeframe: str) -> str:
    """The table key of one series.

    >>> series_key("ETH-BTC", "5m")
    'ETH-BTC|5m'
    """
    return f"{symbol}|{timeframe}"


def split_series_key(key: str) -> tuple[str, str]:
    """``(symbol, timeframe)`` of a key :func:`series_key` made (a symbol holds no ``|``: core/candle.py).

    >>> split_series_key("ETH-BTC|5m")
    ('ETH-BTC', '5m')
    """
    symbol, _, timeframe = key.rpartition("|")
    return symbol, timeframe
