"""Decoded table values kept between batches: a table stores bytes, agents work on objects.

Decoding a value on every batch would cost more than the work itself, so the candle agent keeps the
objects of its partitions here; :mod:`agents.checkpoint` writes their bytes back once per checkpoint.
The cache is emptied whenever partitions move: another worker may have advanced a value meanwhile.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from streams.client_internals import clear_current_event, set_current_event
from core.errors import DecodeError

__all__ = ["TableCache", "as_current", "read_value"]

log = logging.getLogger(__name__)


def as_current(event: Any) -> None:
    """Make ``event`` Faust's current event, so a table write lands on its partition's changelog."""
    set_current_event(event)


def read_value(table: Any, key: str, decode: Callable[[bytes], Any]) -> Any:
    """The table's value of ``key``, decoded (None if absent or unreadable)."""
    # With a current event, Faust's RocksDB store looks only in that event's partition; the
    # key may live in another one (a batch spans partitions, a partition just moved here).
    clear_current_event()
    blob = table.get(key.encode())
    if blob is None:
        return None
    try:
        return decode(blob)
    except DecodeError as exc:  # e.g. written by an older version of the code: start afresh
        log.warning("%s[%s] unreadable (%s); starting it afresh", table.name, key, exc)
        return None


class TableCache(dict):
    """``get(key)`` decodes the table's bytes once and keeps the object."""

    def __init__(self, table: Any, decode: Callable[[bytes], Any]):
        super().__init__()
        self.table, self._decode = table, decode

    def get(self, key: str, default: Any = None) -> Any:
        if not dict.__contains__(self, key):
            value = self.read(key)
            if value is None:
                return default
            self[key] = value
        return dict.get(self, key, default)

    def read(self, key: str) -> Any:
        """The table's value of ``key``, decoded and not cached."""
        return read_value(self.table, key, self._decode)
