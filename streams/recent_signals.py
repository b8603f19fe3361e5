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
>>> len(recent.take_writes()), recent.recent("LTC-BTC")   # 3 slots + 1 slot, 2 heads; then read from the tables
(6, [])
"""

from __future__ import annotations

from typing import Any, MutableMapping

__all__ = ["RECENT_SIGNALS", "RecentSignals"]

RECENT_SIGNALS = 50  # kept per symbol

Table = MutableMapping[bytes, Any]  # a Faust table (JSON values), or a dict in tests


class RecentSignals:
    """``add(signal)``; ``recent(symbol)`` newest first; ``latest()`` the newest signal of each symbol.

    Writes are held back (write-behind, like the candle agent's series): ``add`` keeps them pending and
    reads see them at once; :meth:`take_writes` hands them to the checkpoint, which writes each symbol's
    head once and each new slot once, after the signals themselves were acknowledged.
    """

    def __init__(self, heads: Table, ring: Table, keep: int = RECENT_SIGNALS) -> None:
        self.heads, self.ring, self.keep = heads, ring, keep
        self._heads: dict[bytes, tuple[dict[str, Any], Any]] = {}  # pending: key -> (value, the event behind it)
        self._ring: dict[bytes, tuple[dict[str, Any], Any]] = {}

    def add(self, signal: dict[str, Any], origin: Any = None) -> None:
        """Remember ``signal``; ``origin`` (the candle's event) says which partition the writes go to."""
        symbol = signal["symbol"]
        head = self._head(symbol.encode()) or {"count": 0}
        self._ring[self._slot(symbol, head["count"])] = (signal, origin)
        self._heads[symbol.encode()] = ({"count": head["count"] + 1, "latest": signal}, origin)

    def take_writes(self) -> list[tuple[Table, bytes, dict[str, Any], Any]]:
        """The pending writes as (table, key, value, origin event), slots before heads; pending is emptied."""
        writes = [(self.ring, k, v, e) for k, (v, e) in self._ring.items()]
        writes += [(self.heads, k, v, e) for k, (v, e) in self._heads.items()]
        self._heads, self._ring = {}, {}
        return writes

    def recent(self, symbol: str, limit: int | None = None) -> list[dict[str, Any]]:
        head = self._head(symbol.encode())
        if not head:
            return []
        n = min(head["count"], self.keep, limit or self.keep)
        found = (self._slot_value(self._slot(symbol, head["count"] - 1 - i)) for i in range(n))
        return [s for s in found if s is not None]

    def latest(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest signal of each symbol in these tables, newest first, at most ``limit``."""
        heads = {**{k: v for k, v in self.heads.items()}, **{k: v for k, (v, _) in self._heads.items()}}
        newest = [head["latest"] for head in heads.values() if head and head.get("latest")]
        return sorted(newest, key=lambda s: s["open_time"], reverse=True)[:limit]

    def _head(self, key: bytes) -> dict[str, Any] | None:
        pending = self._heads.get(key)
        return pending[0] if pending is not None else self.heads.get(key)

    def _slot_value(self, key: bytes) -> dict[str, Any] | None:
        pending = self._ring.get(key)
        return pending[0] if pending is not None else self.ring.get(key)

    def _slot(self, symbol: str, seq: int) -> bytes:
        return f"{symbol}#{seq % self.keep}".encode()
