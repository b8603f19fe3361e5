"""The last signals of each symbol, kept in two changelogged tables for the web views.

One list per symbol would be rewritten whole on every signal (50 signals of ~300 bytes: ~15 KB into
the changelog per signal, the largest value the worker wrote). Here a signal costs two small writes: the
symbol's *head* (how many signals it has had, and the newest one: all ``/signals/latest`` needs) and one
slot of a ring of ``keep`` per symbol (``"ETH-BTC#7"``), which compaction keeps at its newest value.

>>> recent = RecentSignals(heads={}, ring={}, keep=3)
>>> for t in range(5):
...     recent.add({"symbol": "ETH-BTC", "open_time": t})
>>> recent.add({"symbol": "LTC-BTC", "open_time": 9})
>>> [s["open_time"] for s in recent.recent("ETH-BTC")], recent.recent("ETH-BTC", limit=1)
([4, 3, 2], [{'symbol': 'ETH-BTC', 'open_time': 4}])
>>> [s["symbol"] for s in recent.latest()]
['LTC-BTC', 'ETH-BTC']
"""

from __future__ import annotations

from typing import Any, MutableMapping

__all__ = ["RECENT_SIGNALS", "RecentSignals"]

RECENT_SIGNALS = 50  # kept per symbol

Table = MutableMapping[bytes, Any]  # a Faust table (JSON values), or a dict in tests


class RecentSignals:
    """``add(signal)``; ``recent(symbol)`` newest first; ``latest()`` the newest signal of each symbol."""

    def __init__(self, heads: Table, ring: Table, keep: int = RECENT_SIGNALS) -> None:
        self.heads, self.ring, self.keep = heads, ring, keep

    def add(self, signal: dict[str, Any]) -> None:
        symbol = signal["symbol"]
        head = self.heads.get(symbol.encode()) or {"count": 0}
        self.ring[self._slot(symbol, head["count"])] = signal  # the slot first: a head never points past it
        self.heads[symbol.encode()] = {"count": head["count"] + 1, "latest": signal}

    def recent(self, symbol: str, limit: int | None = None) -> list[dict[str, Any]]:
        head = self.heads.get(symbol.encode())
        if not head:
            return []
        n = min(head["count"], self.keep, limit or self.keep)
        found = (self.ring.get(self._slot(symbol, head["count"] - 1 - i)) for i in range(n))
        return [s for s in found if s is not None]

    def latest(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest signal of each symbol in these tables, newest first, at most ``limit``."""
        newest = [head["latest"] for head in self.heads.values() if head and head.get("latest")]
        return sorted(newest, key=lambda s: s["open_time"], reverse=True)[:limit]

    def _slot(self, symbol: str, seq: int) -> bytes:
        return f"{symbol}#{seq % self.keep}".encode()
