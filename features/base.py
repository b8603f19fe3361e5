"""The one serialisation shape every feature block shares.

A block lists its scalar attributes in ``_scalars`` and its sub-blocks or rolling
primitives in ``_parts``; ``dump`` flattens them to floats in that order and ``load`` reads
them back into a freshly built block of the same layout. Integers travel as floats (exact
below 2**53) and come back as ints, so a restored block continues bit-identically.

>>> class Counter(Block):
...     __slots__ = ("count", "total")
...     _scalars = ("count", "total")
...     def __init__(self):
...         self.count, self.total = 0, 0.0
>>> a = Counter(); a.count, a.total = 3, 1.5
>>> b = Counter(); b.load(a.dump(), 0), b.count, b.total
(2, 3, 1.5)
"""

from __future__ import annotations

__all__ = ["Block"]


class Block:
    __slots__ = ()
    _scalars: tuple[str, ...] = ()
    _parts: tuple[str, ...] = ()

    def dump(self) -> list[float]:
        out = [float(getattr(self, name)) for name in self._scalars]
        for name in self._parts:
            out += getattr(self, name).dump()
        return out

    def load(self, v: list[float], i: int) -> int:
        for name in self._scalars:
            # the freshly built block's attribute type says whether this was an int
            setattr(self, name, int(v[i]) if isinstance(getattr(self, name), int) else v[i])
            i += 1
        for name in self._parts:
            i = getattr(self, name).load(v, i)
        return i
