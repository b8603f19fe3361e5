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
from streams.feature_store import load_state, save_state
from streams.features import FeatureState

__all__ = ["FeatureStateCache", "TableCache", "as_current"]

log = logging.getLogger(__name__)


def as_current(event: Any) -> None:
    """Make ``event`` Faust's current event, so a table write lands on its partition's changelog."""
    _current_event.set(weakref.ref(event))


class TableCache(dict):
    """``get(key)`` decodes the table's bytes once; ``put(key, value, event)`` writes them back."""

    def __init__(self, table: Any, decode: Callable[[bytes], Any] | None, encode: Callable[[Any], bytes] | None):
        super().__init__()
        self._table, self._decode, self._encode = table, decode, encode

    def get(self, key: str, default: Any = None) -> Any:
        if not dict.__contains__(self, key):
            # With a current event, Faust's RocksDB store looks only in that event's partition; the
            # key may live in another one (a batch spans partitions, a partition just moved here).
            _current_event.set(None)
            try:
                value = self._load(key)
            except DecodeError as exc:  # e.g. written by an older version of the code: start afresh
                log.warning("%s[%s] unreadable (%s); starting it afresh", self._table.name, key, exc)
                return default
            if value is None:
                return default
            self[key] = value
        return dict.get(self, key, default)

    def put(self, key: str, event: Any) -> None:
        """Write the cached object of ``key`` to the table, on ``event``'s partition."""
        as_current(event)
        self._store(key, dict.__getitem__(self, key))

    def _load(self, key: str) -> Any:
        blob = self._table.get(key.encode())
        return None if blob is None else self._decode(blob)

    def _store(self, key: str, value: Any) -> None:
        self._table[key.encode()] = self._encode(value)


class FeatureStateCache(TableCache):
    """The feature states, each kept as a state table value plus window rows (:mod:`streams.feature_store`)."""

    def __init__(self, states: Any, windows: Any):
        super().__init__(states, decode=None, encode=None)  # _load/_store replace the one-blob codec
        self._windows = windows

    def _load(self, key: str) -> FeatureState | None:
        return load_state(self._table, self._windows, key)

    def _store(self, key: str, value: FeatureState) -> None:
        save_state(self._table, self._windows, key, value)
