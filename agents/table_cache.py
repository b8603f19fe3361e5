"""Decoded table values kept between batches: a table stores bytes, agents work on objects.

Decoding a state on every batch would cost more than the work itself, so an agent keeps the objects of
its partitions here and writes their bytes back to the (changelogged) table after each change. The cache
is emptied whenever partitions move: another worker may have advanced a state meanwhile.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Callable

from faust.streams import _current_event  # Faust routes a table write by the "current" event's partition

from streams.errors import DecodeError

__all__ = ["TableCache", "as_current"]

log = logging.getLogger(__name__)


def as_current(event: Any) -> None:
    """Make ``event`` Faust's current event, so a table write lands on its partition's changelog."""
    _current_event.set(weakref.ref(event))


class TableCache(dict):
    """``get(key)`` decodes the table's bytes once; ``put(key, value, event)`` writes them back."""

    def __init__(self, table: Any, decode: Callable[[bytes], Any], encode: Callable[[Any], bytes]):
        super().__init__()
        self._table, self._decode, self._encode = table, decode, encode

    def get(self, key: str, default: Any = None) -> Any:
        if not dict.__contains__(self, key):
            # With a current event, Faust's RocksDB store looks only in that event's partition; the
            # key may live in another one (a batch spans partitions, a partition just moved here).
            _current_event.set(None)
            blob = self._table.get(key.encode())
            if blob is None:
                return default
            try:
                self[key] = self._decode(blob)
            except DecodeError as exc:  # e.g. written by an older version of the code: start afresh
                log.warning("%s[%s] unreadable (%s); starting it afresh", self._table.name, key, exc)
                return default
        return dict.get(self, key, default)

    def put(self, key: str, event: Any) -> None:
        """Write the cached object of ``key`` to the table, on ``event``'s partition."""
        as_current(event)
        self._table[key.encode()] = self._encode(dict.__getitem__(self, key))
