"""The tables the sinks write: columns, conflict key and how a record (an Avro dict) becomes a row.

Every event table's key includes ``open_time`` because a TimescaleDB hypertable only allows unique
indexes that contain its time column. The ids are derived from (symbol, timeframe, open_time, ...), so
``(id, open_time)`` is exactly as unique as ``id``.

``predictions`` and ``signals`` are pure functions of (candle, model version): a replay brings the
same row, so ``ON CONFLICT DO NOTHING`` (no dead tuples). Candles, outcomes and the registry can be
corrected or change status, so they ``DO UPDATE``.

>>> row = TABLES["signals"].row({"id": "s1", "prediction_id": "p1", "symbol": "ETH-BTC", "timeframe": "5m",
...     "open_time": 1515560100000, "direction": "UP", "confidence": 0.4, "entry_price": 0.0994,
...     "horizon": 1, "model_version": "v1", "candle_produced_at": None})
>>> row[:4], row[4].isoformat()
(('s1', 'p1', 'ETH-BTC', '5m'), '2018-01-10T04:55:00+00:00')
>>> TABLES["signals"].row({"id": "s1"})
Traceback (most recent call last):
...
core.errors.InvalidInput: signals record lacks prediction_id
>>> TABLES["candles"].row({"symbol": "X", "timeframe": "5m", "open_time": 10**15, "open": 1, "high": 1, "low": 1,
...                        "close": 1, "volume": 0})
Traceback (most recent call last):
...
core.errors.InvalidInput: candles.open_time cannot be stored: OverflowError: date value out of range
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Mapping

from core.errors import InvalidInput

__all__ = ["TABLES", "Table", "epoch_ms_to_dt"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms_to_dt(ms: Any) -> datetime | None:
    """Epoch milliseconds (or an aware datetime) -> aware UTC datetime; exact, no float rounding."""
    if ms is None or isinstance(ms, datetime):
        return ms
    return _EPOCH + timedelta(milliseconds=int(ms))


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, allow_nan=False)


def _features(value: Any) -> list[float] | None:
    # NaN is a legal float8 and means "window not full yet"; keep it rather than inventing a number.
    return None if value is None else [float(x) for x in value]


def _finite_or_none(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    required: frozenset[str]
    on_conflict: str  # "update" | "nothing"
    convert: Mapping[str, Callable[[Any], Any]]

    def row(self, record: Mapping[str, Any]) -> tuple:
        """The row for ``record``; raises :class:`InvalidInput` naming the first missing field."""
        values = []
        for column in self.columns:
            value = record.get(column)
            if value is None and column in self.required:
                raise InvalidInput(f"{self.name} record lacks {column}")
            fn = self.convert.get(column)
            try:
                values.append(fn(value) if fn is not None and value is not None else value)
            except (ValueError, TypeError, OverflowError) as exc:  # e.g. a time past the year 9999: a poison row
                raise InvalidInput(f"{self.name}.{column} cannot be stored: {type(exc).__name__}: {exc}") from exc
        return tuple(values)

    def key_of(self, row: tuple) -> tuple:
        return tuple(row[self.columns.index(c)] for c in self.key)


def _table(name: str, columns: str, key: str, on_conflict: str, optional: str = "", **convert: Callable) -> Table:
    cols = tuple(columns.split())
    opt = set(optional.split())
    return Table(name, cols, tuple(key.split()), frozenset(c for c in cols if c not in opt), on_conflict, convert)


_PATTERN = "pattern_k pattern_bullish_share pattern_bearish_share pattern_mean_outcome pattern_mean_similarity"

TABLES: dict[str, Table] = {t.name: t for t in (
    _table("candles", "symbol timeframe open_time open high low close volume quote_volume trades "
           "taker_buy_base_volume taker_buy_quote_volume spread_bps", "symbol timeframe open_time", "update",
           "quote_volume trades taker_buy_base_volume taker_buy_quote_volume spread_bps", open_time=epoch_ms_to_dt),
    _table("predictions", "id symbol timeframe open_time close horizon prob_up direction confidence ready "
           "model_version features candle_produced_at", "id open_time", "nothing", "candle_produced_at",
           open_time=epoch_ms_to_dt, candle_produced_at=epoch_ms_to_dt, features=_features),
    _table("signals", "id prediction_id symbol timeframe open_time direction confidence entry_price horizon "
           "model_version candle_produced_at " + _PATTERN, "id open_time", "nothing",
           "candle_produced_at " + _PATTERN, open_time=epoch_ms_to_dt, candle_produced_at=epoch_ms_to_dt,
           pattern_mean_outcome=_finite_or_none, pattern_mean_similarity=_finite_or_none),
    _table("outcomes", "id source prediction_id signal_id symbol timeframe open_time horizon model_version "
           "realized_log_return direction_correct entry_price exit_price pnl status", "id open_time", "update",
           "prediction_id signal_id model_version realized_log_return direction_correct entry_price exit_price "
           "pnl status", open_time=epoch_ms_to_dt),
    _table("model_versions", "version name created_at metadata artifact_sha256 status traffic_share", "version",
           "update", "metadata", created_at=epoch_ms_to_dt, metadata=_json),
    _table("deployments", "id model_version status traffic_share at note", "id", "update", "note",
           at=epoch_ms_to_dt),
)}
