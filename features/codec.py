"""The byte layout of a serialised FeatureState (Faust changelog value).

Layout, little-endian: a fixed header (magic ``CFFS``, format version, flags, feature count,
candle count, last open time, candle length, window rows, number of state floats), then the state
as float64 (the last close, then every running sum and ring in :data:`._layout.LAYOUT` order, so a
restored state continues bit-identically), then the window of recent feature vectors as float32 (the
only lossy part, and only a copy of outputs already emitted).

Version 4 stores the state floats in the fixed-length layout the vectorised engine keeps per symbol,
so :meth:`~features.bank.FeatureBank.states_bytes` writes a blob straight from the bank's
matrix (no FeatureState is built per checkpoint); version 3 (the blocks' own variable-length dump) is
still read. Bump ``VERSION`` whenever the layout changes: a blob of an unknown version or feature count
is refused rather than misread. (Builds before the checkpointed series stored the window apart and set
the ``WINDOW_APART`` flag; such a blob is refused too.)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from core.errors import DecodeError
from features import _layout  # attributes read at call time: _layout builds LAYOUT from a FeatureState
from features.names import N_FEATURES
from features.window import WINDOW, window_buffer

if TYPE_CHECKING:
    from features.state import FeatureState

__all__ = ["VERSION", "decode", "encode", "frame"]

MAGIC = b"CFFS"
VERSION = 4  # 4: state floats in LAYOUT order; 3: the blocks' dump (read only); 2: prefix sums
READABLE = (3, 4)
WINDOW_APART = 0x80  # flag bit of older builds (the low four bits say which optional inputs the feed carries)
_HEADER = struct.Struct("<4sBBHqqqHI")
_BLOCKS = ("layer1", "macd", "osc", "atr", "adx")


def encode(state: FeatureState) -> bytes:
    mask = sum(1 << i for i, present in enumerate(state.has_optional) if present)
    return frame(mask, state.count, state.last_open_time, state.step_ms, [state.last_close, *_layout.pack(state)],
                 state.window())


def frame(mask: int, count: int, last_open_time: int | None, step_ms: int, floats: Sequence[float] | np.ndarray,
          window: np.ndarray) -> bytes:
    """The blob of a state given its parts: ``floats`` = [last close, *layout values], ``window`` oldest first."""
    header = _HEADER.pack(MAGIC, VERSION, mask, N_FEATURES, count, -1 if last_open_time is None else last_open_time,
                          step_ms, len(window), len(floats))
    return b"".join((header, np.asarray(floats, dtype="<f8").tobytes(), window.astype("<f4", copy=False).tobytes()))


def decode(blob: bytes, cls: type[FeatureState]) -> FeatureState:
    """The state of ``blob`` (DecodeError for anything :func:`encode` of this build did not write)."""
    try:
        magic, version, flags, n_features, count, last, step_ms, win_size, n_floats = _HEADER.unpack_from(blob)
    except struct.error as exc:
        raise DecodeError(f"feature state blob too short ({len(blob)} bytes)") from exc
    if magic != MAGIC or version not in READABLE or n_features != N_FEATURES:
        raise DecodeError(f"feature state blob of format {magic!r} v{version} with {n_features} features; "
                          f"this build reads {MAGIC!r} v{'/'.join(map(str, READABLE))} with {N_FEATURES}")
    if flags & WINDOW_APART:
        raise DecodeError("feature state blob with its window stored apart (an older build's table)")
    offset = _HEADER.size
    expected = offset + 8 * n_floats + 4 * win_size * n_features
    if len(blob) != expected:
        raise DecodeError(f"feature state blob is {len(blob)} bytes, its header says {expected}")
    floats = np.frombuffer(blob, dtype="<f8", count=n_floats, offset=offset).tolist()
    state = cls()
    state.count, state.step_ms = count, step_ms
    state.last_open_time = None if last < 0 else last
    state.has_optional = tuple(bool(flags >> i & 1) for i in range(4))
    state.last_close = floats[0]
    if version == 4:
        if n_floats != 1 + _layout.LAYOUT.size:
            raise DecodeError(f"feature state blob holds {n_floats} floats, the layout has {1 + _layout.LAYOUT.size}")
        _layout.unpack(floats[1:], state)
    else:
        i = 1
        for name in _BLOCKS:
            i = getattr(state, name).load(floats, i)
        if i != n_floats:
            raise DecodeError(f"feature state blob holds {n_floats} floats, the layout reads {i}")
    window = np.frombuffer(blob, dtype="<f4", offset=offset + 8 * n_floats).reshape(win_size, n_features)
    state._win = window_buffer(len(window))
    state._win[:len(window)] = window
    state._win_pos = len(window) % WINDOW
    state._win_size = len(window)
    return state
