"""A fixed-length float layout of a FeatureState's blocks, so many states fit one numpy matrix.

The serialised form (``Block.dump``) is almost fixed-length already; only the max/min deques vary.
Here a deque of window ``n`` becomes a ring of ``n`` slots (value at index ``j`` in slot ``j % n``):
values the deque dropped were dominated by a later value still in the window, so a ring slot
holding -inf (max) or +inf (min) instead can never be the answer, and ``max(ring)`` equals the
deque's front. Unpacking rebuilds the very deque the scalar code would hold by replaying the
ring through ``push``'s own rule, so a round trip is bit-identical (same ``to_bytes``).

Only the block state travels here; counters, times and the window of vectors are the bank's own
arrays.

>>> from features.state import FeatureState
>>> from core.candle import Candle
>>> s = FeatureState()
>>> for i in range(40):
...     _ = s.update(Candle("X-Y", "1m", 60_000 * i, 1.0, 1.0 + (i % 5) / 10, 0.9, 1.0, 2.0))
>>> t = FeatureState(); t.count, t.step_ms, t.last_open_time = s.count, s.step_ms, s.last_open_time
>>> unpack(pack(s), t).osc.hh.dq == s.osc.hh.dq, len(pack(s)) == LAYOUT.size
(True, True)
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from features.base import Block
from features.rolling import Lag, RollingMax, RollingMin, RollingSum, RollingVar

__all__ = ["LAYOUT", "Layout", "canonical", "pack", "unpack"]

BLOCKS = ("layer1", "macd", "osc", "atr", "adx")
INF = float("inf")
# attributes of each rolling primitive, in layout order: (name, kind); "ring" is the n-slot deque stand-in
_PRIMITIVES: dict[type, tuple[tuple[str, str], ...]] = {
    Lag: (("pos", "int"), ("size", "int"), ("buf", "list")),
    RollingSum: (("pos", "int"), ("size", "int"), ("ref", "float"), ("pre", "float"), ("s1", "float"),
                 ("buf", "list"), ("suf", "suffix")),
    RollingVar: (("pos", "int"), ("size", "int"), ("ref", "float"), ("pre", "float"), ("s1", "float"),
                 ("pre2", "float"), ("m2", "float"), ("buf", "list"), ("suf", "suffix"), ("suf2", "suffix")),
    RollingMax: (("t", "int"), ("ring", "ring")),
    RollingMin: (("t", "int"), ("ring", "ring")),
}


@dataclass(frozen=True)
class Field:
    path: str  # dotted path of the object, e.g. "layer1.s5"
    attr: str
    kind: str  # int, float, list, ints, ring, suffix (a list of n + 1 suffix sums)
    offset: int
    length: int


class Layout:
    """Offsets of every state value; ``offset["layer1.s5.s"]`` is where that running sum lives."""

    def __init__(self, template: object) -> None:
        self.fields: list[Field] = []
        self.size = 0
        for name in BLOCKS:
            self._walk(getattr(template, name), name)
        self.offset = {f"{f.path}.{f.attr}": f.offset for f in self.fields}
        # The fields by object, in layout order, each object's path resolved once a pack/unpack (a
        # getattr walk per field cost ~40 % of a pack).
        self.groups: list[tuple[tuple[str, ...], list[tuple[str, str, int]]]] = []
        for f in self.fields:
            path = tuple(f.path.split("."))
            if not self.groups or self.groups[-1][0] != path:
                self.groups.append((path, []))
            self.groups[-1][1].append((f.attr, f.kind, f.length))

    def _add(self, path: str, attr: str, kind: str, length: int) -> None:
        self.fields.append(Field(path, attr, kind, self.size, length))
        self.size += length

    def _walk(self, obj: object, path: str) -> None:
        for cls in type(obj).__mro__:
            if cls in _PRIMITIVES:
                for attr, kind in _PRIMITIVES[cls]:
                    length = {"list": obj.n, "ints": obj.n, "ring": obj.n, "suffix": obj.n + 1}.get(kind, 1)
                    self._add(path, attr, kind, length)
                return
        assert isinstance(obj, Block), f"{path}: no layout for {type(obj).__name__}"
        for attr in obj._scalars:
            self._add(path, attr, "int" if isinstance(getattr(obj, attr), int) else "float", 1)
        for part in obj._parts:
            self._walk(getattr(obj, part), f"{path}.{part}")


def _resolve(state: object, path: str) -> object:
    obj = state
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _ring(m: RollingMax) -> list[float]:
    empty = INF if isinstance(m, RollingMin) else -INF  # a value that never wins
    ring = [empty] * m.n
    for t, x in m.dq:
        ring[t % m.n] = x
    return ring


def _deque(m: RollingMax, ring: list[float]) -> deque:
    # replay the window through push's own rule: the result is the deque push would have built
    dq: deque = deque()
    better = m._better
    for t in range(max(0, m.t - m.n), m.t):
        x = ring[t % m.n]
        while dq and better(x, dq[-1][1]):
            dq.pop()
        dq.append((t, x))
    return dq


def _objects(state: object) -> Iterator[tuple[object, list[tuple[str, str, int]]]]:
    """Each object of ``state``'s blocks with its fields (attribute, kind, length), in layout order."""
    for path, fields in LAYOUT.groups:
        obj = state
        for name in path:
            obj = getattr(obj, name)
        yield obj, fields


def pack(state: object) -> list[float]:
    """The block state of ``state`` as ``LAYOUT.size`` floats."""
    out: list[float] = []
    for obj, fields in _objects(state):
        for attr, kind, _ in fields:
            if kind == "ring":
                out += _ring(obj)
            elif kind in ("list", "ints", "suffix"):
                out += map(float, getattr(obj, attr))
            else:
                out.append(float(getattr(obj, attr)))
    return out


def unpack(values: list[float], state: object) -> object:
    """Load ``values`` (from :func:`pack`) into the blocks of ``state`` (a fresh FeatureState); returns it."""
    at = 0
    for obj, fields in _objects(state):
        for attr, kind, length in fields:
            if kind == "int":
                setattr(obj, attr, int(values[at]))
            elif kind == "float":
                setattr(obj, attr, values[at])
            else:
                chunk = values[at:at + length]
                if kind == "ints":
                    setattr(obj, attr, [int(x) for x in chunk])
                elif kind == "ring":  # "t" comes first in the layout, so the window's indices are known here
                    obj.dq = _deque(obj, chunk)
                else:  # a ring or suffix sums: doubles in an array, as features/rolling.py keeps them
                    setattr(obj, attr, array("d", chunk))
            at += length
    return state


def canonical(columns: np.ndarray) -> np.ndarray:
    """Bank columns (``LAYOUT.size`` x k, one series each) as :func:`pack` writes them, in place.

    The vectorised engine keeps every value of a max/min window in its ring; :func:`pack` keeps only
    those the scalar deque holds and writes the never-winning -inf (max) / +inf (min) elsewhere. A
    value is held when it beats every later value of the window strictly (an equal later value pops
    it), so the same state gives the same bytes whichever engine held it.
    """
    k = columns.shape[1]
    for t_offset, ring_offset, n, sign in _RINGS:
        times = columns[t_offset].astype(np.int64)[None, :] - n + np.arange(n)[:, None]  # oldest first
        slots = times % n
        ring = columns[ring_offset:ring_offset + n]
        ordered = np.take_along_axis(ring, slots, axis=0)
        signed = sign * ordered  # compare as a max either way
        later = np.full((n, k), -INF)
        later[:-1] = np.maximum.accumulate(signed[:0:-1], axis=0)[::-1]  # best value after each one
        np.put_along_axis(ring, slots, np.where(signed > later, ordered, -sign * INF), axis=0)
    return columns


def _rings() -> list[tuple[int, int, int, float]]:
    """(offset of t, offset of the ring, window, +1 max / -1 min) of each max/min primitive."""
    out = []
    for f in LAYOUT.fields:
        if f.kind == "ring":
            t_offset = LAYOUT.offset[f"{f.path}.t"]
            sign = -1.0 if isinstance(_resolve(_template(), f.path), RollingMin) else 1.0
            out.append((t_offset, f.offset, f.length, sign))
    return out


def _template() -> object:
    from features.state import (
        FeatureState,  # state imports nothing from here; avoid a cycle anyway
    )

    return FeatureState()


LAYOUT = Layout(_template())
_RINGS = _rings()
