"""Rolling-window primitives: O(1) per value, and accurate however long the stream runs.

The textbook running sum (add the new value, subtract the one that leaves) is not accurate:
when a large value leaves a window of small ones, ``s - big`` keeps the rounding error of
``big``'s addition, which can be far larger than everything left in the window (``[1.0, 0.0,
1e-9]`` then pushing ``0.0``: 1.00000008e-9 instead of 1e-9), and a Welford add/replace
variance fails the same way. So nothing here ever subtracts a departed value. The window at
ring position ``pos`` is the older values ``buf[pos:]`` (from the previous lap of the ring)
plus this lap's ``buf[:pos]``: the first part's aggregate is a suffix sum, computed once per lap
when the lap closes (O(n) once per n pushes, so O(1) amortised), and the second part is summed
as values arrive. Values are summed as deviations from a reference value that is always in the
window, so every rounding is bounded by the magnitude of values that are in the window now, a
mean is accurate to the last bit of its values, and a variance is accurate relative to itself
whatever the offset of the data. A window of one repeated value has an exact mean and exactly
0.0 variance, and an all-zero window sums to exactly 0.0 (see :class:`RollingSum`).

All primitives serialise to a flat list of floats (``dump``) and back (``load``).

>>> s = RollingSum(3)
>>> for x in (1.0, 2.0, 3.0, 4.0):
...     s.push(x)
>>> s.value, s.full
(9.0, True)
>>> m = RollingMax(3)
>>> for x in (5.0, 1.0, 2.0, 0.5):
...     m.push(x)
>>> m.value
2.0
"""

from __future__ import annotations

from array import array
from collections import deque
from itertools import accumulate, repeat
from operator import mul, sub

__all__ = ["Lag", "RollingMax", "RollingMin", "RollingSum", "RollingVar"]


def _zeros(n: int) -> array:
    """``n`` doubles, 0.0. The rings and suffix sums are arrays of doubles, not lists of float objects: a
    warming series' state is ~20 KB instead of ~27, with ~390 fewer small objects to leave in the allocator's
    pools when the series turns vectorised (2,000 series warming up at once; BENCHMARKS.md, Pipeline)."""
    return array("d", bytes(8 * n))


class Lag:
    """The last ``n`` values, for looking ``k`` values back (``ago(0)`` is the newest)."""

    __slots__ = ("n", "buf", "pos", "size")

    def __init__(self, n: int) -> None:
        self.n = n
        self.buf = _zeros(n)
        self.pos = 0
        self.size = 0

    def push(self, x: float) -> None:
        self.buf[self.pos] = x
        self.pos = self.pos + 1 if self.pos + 1 < self.n else 0
        if self.size < self.n:
            self.size += 1

    def ago(self, k: int) -> float:
        return self.buf[self.pos - 1 - k]  # negative indices wrap around the ring

    def oldest_first(self) -> array:
        """The values in arrival order (only meaningful once full)."""
        return self.buf[self.pos:] + self.buf[:self.pos]

    def dump(self) -> list[float]:
        return [float(self.pos), float(self.size), *self.buf]

    def load(self, v: list[float], i: int) -> int:
        self.pos, self.size = int(v[i]), int(v[i + 1])
        self.buf = array("d", v[i + 2:i + 2 + self.n])
        return i + 2 + self.n


def _suffix_sums(newest_first) -> array:
    """Suffix sums of a lap given its values newest first: ``out[i] = xs[i] + (xs[i + 1] + (... + xs[-1]))``
    for the values ``xs`` in ring order, then a final 0.0 (the sum of nothing, at ``pos == n``).

    ``itertools.accumulate`` adds one value at a time, in the same order as ``np.add.accumulate``
    over the reversed ring, which is what the vectorised bank (:mod:`._vrolling`) uses.
    """
    out = array("d", accumulate(newest_first))
    out.reverse()
    out.append(0.0)
    return out


class RollingSum:
    """Sum and mean of the last ``n`` values pushed, never subtracting a value that left the window.

    The values are kept relative to ``ref``, a value that is always in the window (the first value,
    then the newest value of each lap as the lap closes: it stays in the window for the whole
    next lap), as ``d = x - ref``. The window at ring position ``pos`` is the newest values of
    the previous lap, ``buf[pos:]``, plus this lap's ``buf[:pos]``: the sum of the first part's
    ``d`` is ``suf[pos]``, suffix sums computed once when the previous lap closed, and the second
    part's is ``pre``, summed as the values arrive. So ``s1 = suf[pos] + pre`` only ever adds
    values that are in the window: its error is bounded by the magnitude of the window itself,
    and a large value that left the window leaves no trace. Then ``sum = ref * k + s1`` and
    ``mean = ref + s1 / k`` for the ``k`` values of the window. A window of one repeated value
    has every ``d == 0``: its mean is exactly that value and its sum the correctly rounded
    ``k * value`` (so an all-zero window sums to exactly 0.0).
    """

    __slots__ = ("n", "buf", "pos", "size", "ref", "pre", "suf", "s1")

    def __init__(self, n: int) -> None:
        self.n = n
        self.buf = _zeros(n)
        self.pos = 0
        self.size = 0
        self.ref = 0.0
        self.pre = 0.0  # sum of d over this lap
        self.suf = _zeros(n + 1)  # suffix sums of d over the previous lap; all 0.0 during the first
        self.s1 = 0.0  # sum of d over the window

    @property
    def full(self) -> bool:
        return self.size == self.n

    @property
    def s(self) -> float:
        """The sum of the window."""
        return self.ref * self.size + self.s1

    value = s

    @property
    def mean(self) -> float:
        """The mean of the window (NaN-free only once something was pushed)."""
        return self.ref + self.s1 / self.size

    def push(self, x: float) -> None:
        buf = self.buf
        pos = self.pos
        buf[pos] = x
        if not self.size:
            self.ref = x
        pos += 1
        if pos == self.n:  # the lap closes: re-centre on its newest value, then its suffix sums
            pos = 0
            self.size = self.n
            self.ref = x
            self._suffixes()
            self.pre = 0.0
        else:
            self.pre += x - self.ref
            if self.size < pos:
                self.size = pos
        self.pos = pos
        self.s1 = self.suf[pos] + self.pre

    def _suffixes(self) -> None:
        self.suf = _suffix_sums(map(sub, reversed(self.buf), repeat(self.ref)))  # d, newest first

    def _rebuild(self) -> None:
        """The derived values (suffix sums, window sums) from the serialised ones."""
        if self.size == self.n:
            self._suffixes()
        else:
            self.suf = _zeros(self.n + 1)
        self.s1 = self.suf[self.pos] + self.pre

    def dump(self) -> list[float]:
        return [float(self.pos), float(self.size), self.ref, self.pre, *self.buf]

    def load(self, v: list[float], i: int) -> int:
        self.pos, self.size, self.ref, self.pre = int(v[i]), int(v[i + 1]), v[i + 2], v[i + 3]
        i += 4
        self.buf = array("d", v[i:i + self.n])
        self._rebuild()
        return i + self.n


class RollingVar(RollingSum):
    """Mean and variance of the last ``n`` values: :class:`RollingSum` with a second sum, of ``d * d``.

    With ``s1 = sum(d)`` and ``s2 = sum(d * d)`` over the ``k`` values of the window,
    ``m2 = s2 - s1 * s1 / k``. Because ``ref`` is in the window, ``|mean - ref| <= sqrt(m2)``, so
    the subtraction cancels at most a factor ``k + 1``: the variance is accurate relative to
    itself whatever the offset of the data (prices near 30,000 moving by 0.01) and whatever left
    the window. A window of one repeated value has every ``d == 0`` and exactly 0.0 variance.
    """

    __slots__ = ("pre2", "suf2", "m2")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.pre2 = 0.0
        self.suf2 = _zeros(n + 1)
        self.m2 = 0.0

    def var(self, ddof: int = 0) -> float:
        """Variance of the window; exactly 0.0 when every value in it is the same."""
        return self.m2 / (self.size - ddof) if self.m2 > 0.0 else 0.0

    def push(self, x: float) -> None:
        super().push(x)  # the window, its reference and the sums of d (s1)
        pos = self.pos
        if pos:  # within the lap: d against the reference the sums of d used
            d = x - self.ref
            self.pre2 += d * d
        else:  # the lap closed: the suffix sums are rebuilt (_suffixes), the lap's own sum restarts
            self.pre2 = 0.0
        s1 = self.s1  # (not _stats(): s1 is already summed, and a warming series pushes this ~4 times a candle)
        m2 = self.suf2[pos] + self.pre2 - s1 * s1 / self.size
        self.m2 = m2 if m2 > 0.0 else 0.0

    def _suffixes(self) -> None:
        d = list(map(sub, reversed(self.buf), repeat(self.ref)))  # newest first
        self.suf = _suffix_sums(d)
        self.suf2 = _suffix_sums(map(mul, d, d))

    def _stats(self) -> None:
        pos = self.pos
        s1 = self.s1 = self.suf[pos] + self.pre
        m2 = self.suf2[pos] + self.pre2 - s1 * s1 / self.size
        self.m2 = m2 if m2 > 0.0 else 0.0

    def _rebuild(self) -> None:
        if self.size == self.n:
            self._suffixes()
        else:
            self.suf, self.suf2 = _zeros(self.n + 1), _zeros(self.n + 1)
        if self.size:
            self._stats()
        else:
            self.s1 = self.m2 = 0.0

    def dump(self) -> list[float]:
        return [float(self.pos), float(self.size), self.ref, self.pre, self.pre2, *self.buf]

    def load(self, v: list[float], i: int) -> int:
        self.pos, self.size, self.ref, self.pre, self.pre2 = int(v[i]), int(v[i + 1]), v[i + 2], v[i + 3], v[i + 4]
        i += 5
        self.buf = array("d", v[i:i + self.n])
        self._rebuild()
        return i + self.n


class RollingMax:
    """Maximum of the last ``n`` values: a monotonic deque, O(1) amortised per push."""

    __slots__ = ("n", "t", "dq")
    _better = staticmethod(lambda new, kept: new >= kept)

    def __init__(self, n: int) -> None:
        self.n = n
        self.t = 0  # index of the next value pushed
        self.dq: deque[tuple[int, float]] = deque()

    @property
    def value(self) -> float:
        return self.dq[0][1]

    def push(self, x: float) -> None:
        dq, better = self.dq, self._better
        while dq and better(x, dq[-1][1]):
            dq.pop()
        dq.append((self.t, x))
        self.t += 1
        if dq[0][0] <= self.t - 1 - self.n:
            dq.popleft()

    def dump(self) -> list[float]:
        out = [float(self.t), float(len(self.dq))]
        for t, x in self.dq:
            out += (float(t), x)
        return out

    def load(self, v: list[float], i: int) -> int:
        self.t, k = int(v[i]), int(v[i + 1])
        i += 2
        self.dq = deque((int(v[i + 2 * j]), v[i + 2 * j + 1]) for j in range(k))
        return i + 2 * k


class RollingMin(RollingMax):
    """Minimum of the last ``n`` values."""

    __slots__ = ()
    _better = staticmethod(lambda new, kept: new <= kept)
