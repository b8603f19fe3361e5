"""SeriesState: everything the candle agent keeps about one (symbol, timeframe), as one table value.

One value per series — the rolling features with their window, the labeller of its pending predictions,
and the input position it reflects — so a checkpoint writes one record per touched series and a
restored series is always internally consistent (never features from one moment and a labeller from
another).

The position is what makes recovery exact (:mod:`agents.checkpoint`): a state is only ever written
after the outputs of every candle it contains were acknowledged, so a redelivered candle that the
state already covers (same source partition, an offset not after the state's, an open time not after
its last) had its prediction, signal and outcomes published; it is skipped, not refused as out of order.

>>> from streams.candle import Candle
>>> series = SeriesState()
>>> for i in range(3):
...     _ = series.features.update(Candle("ETH-BTC", "5m", 300_000 * i, 1.0, 1.1, 0.9, 1.0, 2.0))
...     series.position = Position("candles.5m", 2, 40 + i)
>>> restored = SeriesState.from_bytes(series.to_bytes())
>>> restored.position, restored.features.count
(Position(topic='candles.5m', partition=2, offset=42), 3)
>>> restored.features_at(600_000).shape, restored.features_at(900_000)
((41,), None)
>>> restored.covers(Position("candles.5m", 2, 41), 300_000), restored.covers(Position("candles.5m", 2, 43), 900_000)
(True, False)
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

from learning.labelling import Labeller
from streams.errors import DecodeError
from streams.features import FeatureState

__all__ = ["Position", "SeriesState", "covers", "series_key"]

_MAGIC = b"CFS1"
_HEAD = struct.Struct(">HiqI")  # topic length, partition, offset (-1: none), feature bytes length


class Position(NamedTuple):
    """Where a candle was read: topic, partition, offset of its message."""

    topic: str
    partition: int
    offset: int


def covers(mine: Position | None, last_open_time: int | None, position: Position | None, open_time: int) -> bool:
    """A series whose last input was ``mine`` and last candle ``last_open_time`` already holds the candle
    read at ``position`` with ``open_time``: the same topic partition, an offset not after its own, an
    open time not after its last (a candle from elsewhere is not ours to skip: the usual rules refuse it)."""
    return (position is not None and mine is not None and last_open_time is not None and open_time <= last_open_time
            and position.partition == mine.partition and position.topic == mine.topic and position.offset <= mine.offset)


def encode_series(features: bytes, labeller: Labeller | None, position: Position | None) -> bytes:
    """:meth:`SeriesState.to_bytes` from its parts, the features already serialised (a FeatureBank
    writes them straight from its matrix)."""
    topic = position.topic.encode() if position else b""
    partition, offset = (position.partition, position.offset) if position else (-1, -1)
    tail = labeller.to_bytes() if labeller is not None else b""
    return b"".join((_MAGIC, _HEAD.pack(len(topic), partition, offset, len(features)), topic, features, tail))


def series_key(symbol: str, timeframe: str) -> str:
    """The table key of one series.

    >>> series_key("ETH-BTC", "5m")
    'ETH-BTC|5m'
    """
    return f"{symbol}|{timeframe}"


class SeriesState:
    """Features, labeller and input position of one series (see the module docstring)."""

    __slots__ = ("features", "labeller", "position")

    def __init__(self, features: FeatureState | None = None, labeller: Labeller | None = None,
                 position: Position | None = None) -> None:
        self.features = features if features is not None else FeatureState()
        self.labeller = labeller
        self.position = position

    def covers(self, position: Position | None, open_time: int) -> bool:
        """True if the candle at ``position`` with ``open_time`` is already folded into this state."""
        return covers(self.position, self.features.last_open_time, position, open_time)

    def features_at(self, open_time: int) -> np.ndarray | None:
        """The feature vector of the candle at ``open_time`` while the window still holds it (float64)."""
        f = self.features
        if f.last_open_time is None or not f.step_ms:
            return None
        back, off = divmod(f.last_open_time - open_time, f.step_ms)
        window = f.window()
        if off or not 0 <= back < len(window):
            return None
        return window[len(window) - 1 - back].astype(np.float64)

    def to_bytes(self) -> bytes:
        return encode_series(self.features.to_bytes(), self.labeller, self.position)

    @classmethod
    def from_bytes(cls, blob: bytes) -> SeriesState:
        """Raises :class:`~streams.errors.DecodeError` for anything :meth:`to_bytes` did not write."""
        if not isinstance(blob, (bytes, bytearray)) or blob[:4] != _MAGIC or len(blob) < 4 + _HEAD.size:
            raise DecodeError("not a series state (bad magic or too short)")
        n_topic, partition, offset, n_features = _HEAD.unpack_from(blob, 4)
        start = 4 + _HEAD.size
        topic = blob[start:start + n_topic].decode()
        start += n_topic
        features = FeatureState.from_bytes(bytes(blob[start:start + n_features]))
        rest = bytes(blob[start + n_features:])
        labeller = Labeller.from_bytes(rest) if rest else None
        return cls(features, labeller, Position(topic, partition, offset) if offset >= 0 else None)
