"""The byte layout of a serialised FeatureState (Faust changelog value).

Layout, little-endian: a fixed header (magic ``CFFS``, format version, flags, feature count,
candle count, last open time, candle length, window rows, number of state floats), then the state
as float64 (every running sum, ring and deque, so a restored state continues bit-identically),
then, unless the ``WINDOW_APART`` flag is set, the window of recent feature vectors as float32
(the only lossy part, and only a copy of outputs already emitted). Bump ``VERSION`` whenever a
block's layout changes: a blob of another version or feature count is refused rather than misread.

The window is three quarters of a blob (60 x 41 float32 = 9.8 KB of ~13 KB), and a changelog gets a
new value per candle; so the agent stores it apart, in blocks of rows (:mod:`streams.feature_store`):
a row is ``encode_row``'s bytes (the row's candle count as a tag, then its float32 values) and the blob
says only how many rows the window has. ``decode`` then asks for each row by its slot and keeps the
newest run of rows whose tags are the expected ones.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable

import numpy as np

from streams.errors import DecodeError
from streams.features.names import N_FEATURES

if TYPE_CHECKING:
    from streams.features.state import FeatureState

__all__ = ["ROW_BYTES", "VERSION", "decode", "encode", "encode_row", "row_slot"]

MAGIC = b"CFFS"
VERSION = 3  # 3: the window may be stored apart (flag WINDOW_APART); 2: prefix sums
WINDOW_APART = 0x80  # flag bit (the low four bits say which optional inputs the feed carries)
_HEADER = struct.Struct("<4sBBHqqqHI")
_ROW_TAG = struct.Struct("<q")
ROW_BYTES = _ROW_TAG.size + 4 * N_FEATURES  # one window row stored apart: its tag, then float32 values
_BLOCKS = ("layer1", "macd", "osc", "atr", "adx")

RowReader = Callable[[int], "bytes | None"]  # window slot -> the row stored for it, if any


def row_slot(tag: int, window: int) -> int:
    """The slot of the row made by the ``tag``-th candle of a state (tags count from 1)."""
    return (tag - 1) % window


def encode_row(tag: int, row: np.ndarray) -> bytes:
    return _ROW_TAG.pack(tag) + np.asarray(row, dtype="<f4").tobytes()


def encode(state: FeatureState, window: bool = True) -> bytes:
    mask = sum(1 << i for i, present in enumerate(state.has_optional) if present)
    floats = [state.last_close]
    for name in _BLOCKS:
        floats += getattr(state, name).dump()
    last = -1 if state.last_open_time is None else state.last_open_time
    flags = mask if window else mask | WINDOW_APART
    header = _HEADER.pack(MAGIC, VERSION, flags, N_FEATURES, state.count, last, state.step_ms,
                          state._win_size, len(floats))
    parts = [header, np.asarray(floats, dtype="<f8").tobytes()]
    if window:
        parts.append(state.window().astype("<f4", copy=False).tobytes())
    return b"".join(parts)


def decode(blob: bytes, cls: type[FeatureState], rows: RowReader | None = None) -> FeatureState:
    """The state of ``blob``; a window stored apart is read row by row with ``rows`` (None: left empty)."""
    try:
        magic, version, flags, n_features, count, last, step_ms, win_size, n_floats = _HEADER.unpack_from(blob)
    except struct.error as exc:
        raise DecodeError(f"feature state blob too short ({len(blob)} bytes)") from exc
    if magic != MAGIC or version != VERSION or n_features != N_FEATURES:
        raise DecodeError(f"feature state blob of format {magic!r} v{version} with {n_features} features; "
                          f"this build reads {MAGIC!r} v{VERSION} with {N_FEATURES}")
    apart = bool(flags & WINDOW_APART)
    offset = _HEADER.size
    expected = offset + 8 * n_floats + (0 if apart else 4 * win_size * n_features)
    if len(blob) != expected:
        raise DecodeError(f"feature state blob is {len(blob)} bytes, its header says {expected}")
    floats = np.frombuffer(blob, dtype="<f8", count=n_floats, offset=offset).tolist()
    state = cls()
    state.count, state.step_ms = count, step_ms
    state.last_open_time = None if last < 0 else last
    state.has_optional = tuple(bool(flags >> i & 1) for i in range(4))
    state.last_close = floats[0]
    i = 1
    for name in _BLOCKS:
        i = getattr(state, name).load(floats, i)
    if i != n_floats:
        raise DecodeError(f"feature state blob holds {n_floats} floats, the layout reads {i}")
    if apart:
        window = _read_rows(rows, count, win_size, state._win.shape[0]) if rows is not None else np.empty((0, N_FEATURES))
    else:
        window = np.frombuffer(blob, dtype="<f4", offset=offset + 8 * n_floats).reshape(win_size, n_features)
    state._win[:len(window)] = window
    state._win_pos = len(window) % state._win.shape[0]
    state._win_size = len(window)
    state._unsaved = 0 if apart else len(window)  # rows that came inline are not stored apart yet
    return state


def _read_rows(rows: RowReader, count: int, win_size: int, capacity: int) -> np.ndarray:
    """The newest rows of the window, oldest first, stopping at the first missing or stale one (a row
    another state wrote before this one started over, or that a crash kept from being written)."""
    found: list[np.ndarray] = []
    for tag in range(count, count - win_size, -1):
        row = rows(row_slot(tag, capacity))
        if row is None or len(row) != ROW_BYTES or _ROW_TAG.unpack_from(row)[0] != tag:
            break
        found.append(np.frombuffer(row, dtype="<f4", offset=_ROW_TAG.size))
    return np.array(found[::-1], dtype=np.float32).reshape(len(found), N_FEATURES)
