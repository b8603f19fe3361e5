"""SeriesState: everything the candle agent keeps about one (symbol, timeframe), as one table value.

One value per series — the rolling features with their window, the labeller of its pending predictions,
the recurrent state of each sequence model serving it (per model version, models/mamba/recurrent.py),
and the input position it reflects — so a checkpoint writes one record per touched series and a
restored series is always internally consistent (never features from one moment and a labeller from
another).

The position is what makes recovery exact (:mod:`agents.checkpoint`): a state is only ever written
after the outputs of every candle it contains were acknowledged, so a redelivered candle that the
state already covers (same source partition, an offset not after the state's, an open time not after
its last) had its prediction, signal and outcomes published; it is skipped, not refused as out of order.

>>> from core.candle import Candle
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
>>> series.sequences["mamba-0123"] = np.arange(4, dtype=np.float32)
>>> SeriesState.from_bytes(series.to_bytes()).sequences["mamba-0123"].tolist()
[0.0, 1.0, 2.0, 3.0]
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

from learning.labelling import Labeller
from core.errors import DecodeError
from features import FeatureState

__all__ = ["Position", "SeriesState", "covers"]

_MAGIC = b"CFS2"  # 2: with the sequence models' states; CFS1 (without) is still read
_MAGIC_1 = b"CFS1"
_HEAD = struct.Struct(">HiqII")  # topic length, partition, offset (-1: none), feature bytes, sequence bytes
_HEAD_1 = struct.Struct(">HiqI")
_SEQ = struct.Struct(">HI")  # per sequence state: version length, float32 count


def _encode_sequences(sequences: dict[str, np.ndarray] | None) -> bytes:
    parts = []
    for version, state in sorted((sequences or {}).items()):
        name = version.encode()
        parts += [_SEQ.pack(len(name), state.size), name, np.asarray(state, dtype="<f4").tobytes()]
    return b"".join(parts)


def _decode_sequences(blob: bytes) -> dict[str, np.ndarray]:
    out, at = {}, 0
    while at < len(blob):
        n_name, size = _SEQ.unpack_from(blob, at)
        at += _SEQ.size
        version = blob[at:at + n_name].decode()
        at += n_name
        out[version] = np.frombuffer(blob, dtype="<f4", count=size, offset=at).astype(np.float32)
        at += 4 * size
    return out


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


def encode_series(features: bytes, labeller: Labeller | None, position: Position | None,
                  sequences: dict[str, np.ndarray] | None = None) -> bytes:
    """:meth:`SeriesState.to_bytes` from its parts, the features already serialised (a FeatureBank
    writes them straight from its matrix)."""
    topic = position.topic.encode() if position else b""
    partition, offset = (position.partition, position.offset) if position else (-1, -1)
    tail = labeller.to_bytes() if labeller is not None else b""
    seq = _encode_sequences(sequences)
    return b"".join((_MAGIC, _HEAD.pack(len(topic), partition, offset, len(features), len(seq)), topic, features,
                     seq, tail))


class SeriesState:
    """Features, labeller and input position of one series (see the module docstring)."""

    __slots__ = ("features", "labeller", "position", "sequences")

    def __init__(self, features: FeatureState | None = None, labeller: Labeller | None = None,
                 position: Position | None = None, sequences: dict[str, np.ndarray] | None = None) -> None:
        self.features = features if features is not None else FeatureState()
        self.labeller = labeller
        self.position = position
        self.sequences = sequences if sequences is not None else {}  # model version -> recurrent state

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
        return encode_series(self.features.to_bytes(), self.labeller, self.position, self.sequences)

    @classmethod
    def from_bytes(cls, blob: bytes) -> SeriesState:
        """Raises :class:`~core.errors.DecodeError` for anything :meth:`to_bytes` did not write."""
        if not isinstance(blob, (bytes, bytearray)) or blob[:4] not in (_MAGIC, _MAGIC_1):
            raise DecodeError("not a series state (bad magic)")
        head = _HEAD if blob[:4] == _MAGIC else _HEAD_1
        if len(blob) < 4 + head.size:
            raise DecodeError("not a series state (too short)")
        n_topic, partition, offset, n_features, *n_seq = head.unpack_from(blob, 4)
        start = 4 + head.size
        topic = blob[start:start + n_topic].decode()
        start += n_topic
        features = FeatureState.from_bytes(bytes(blob[start:start + n_features]))
        start += n_features
        n_seq = n_seq[0] if n_seq else 0
        try:
            sequences = _decode_sequences(bytes(blob[start:start + n_seq]))
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"series state: bad sequence states ({exc})") from None
        rest = bytes(blob[start + n_seq:])
        labeller = Labeller.from_bytes(rest) if rest else None
        return cls(features, labeller, Position(topic, partition, offset) if offset >= 0 else None, sequences)
