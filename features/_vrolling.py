"""The rolling primitives of :mod:`.rolling`, for many series at once, on the columns of a state matrix.

``M`` is a ``(LAYOUT.size, B)`` float64 matrix: one column per series, one row per state value
(:mod:`._layout`). Each function repeats, element by element, the arithmetic of the scalar
primitive in the same order, so every column ends bit-identical to what the scalar object would
hold. Only series past warm-up come here (every ring full), which removes the warm-up branches.

The once-per-lap suffix sums are ``np.add.accumulate`` over the reversed ring of the columns whose
ring wraps on this push (one in ``n``): an accumulation adds one value at a time, in the same order
as the scalar ``itertools.accumulate``, so it rounds identically.

>>> import numpy as np
>>> from features.rolling import RollingSum
>>> from features._layout import LAYOUT
>>> M = np.zeros((LAYOUT.size, 1)); M[LAYOUT.offset["layer1.s5.size"]] = 5
>>> ref = RollingSum(5)
>>> for x in (0.0,) * 5 + (1.5, 2.25, 0.0, 3.0, 1e-3, 7.0):
...     ref.push(x); base, s1 = sum_push(Cols(M), "layer1.s5", 5, np.array([x]))
>>> bool(base[0] * 5 + s1[0] == ref.s), bool(M[LAYOUT.offset["layer1.s5.pre"], 0] == ref.pre)
(True, True)
"""

from __future__ import annotations

import numpy as np

from features._layout import LAYOUT

__all__ = ["Cols", "ema_push", "lag_push", "max_push", "sum_push", "true_range", "var_push", "var_value"]

_OFF = LAYOUT.offset


class Cols:
    """Named views into the state matrix of one batch (writes go straight into it)."""

    __slots__ = ("M", "idx")

    def __init__(self, M: np.ndarray) -> None:
        self.M = M
        self.idx = np.arange(M.shape[1])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.M[_OFF[name]]

    def ring(self, name: str, n: int) -> np.ndarray:
        o = _OFF[name]
        return self.M[o:o + n]

    def pos(self, path: str) -> np.ndarray:
        return self.M[_OFF[path + ".pos"]].astype(np.intp)


def lag_push(S: Cols, path: str, n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Push ``x``; return (ring, position after the push) so callers can look back (``ago``)."""
    p = S.pos(path)
    buf = S.ring(path + ".buf", n)
    buf[p, S.idx] = x
    p += 1
    p[p == n] = 0
    S[path + ".pos"][:] = p
    return buf, p


def ago(S: Cols, buf: np.ndarray, p: np.ndarray, n: int, k: int) -> np.ndarray:
    """``Lag.ago(k)`` with ``p`` the position after the last push."""
    return buf[(p - 1 - k) % n, S.idx]


def _suffix_sums(block: np.ndarray) -> np.ndarray:
    """``rolling._suffix_sums`` of every column, without its final 0.0: the same additions in the same order."""
    return np.add.accumulate(block[::-1], axis=0)[::-1]


def sum_push(S: Cols, path: str, n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RollingSum.push on full windows; returns (ref, s1): the sum is ``ref * n + s1``, the mean ``ref + s1 / n``."""
    idx = S.idx
    p = S.pos(path)
    buf = S.ring(path + ".buf", n)
    suf = S.ring(path + ".suf", n + 1)
    ref, pre = S[path + ".ref"], S[path + ".pre"]
    buf[p, idx] = x
    pre += x - ref
    p += 1
    wrap = np.flatnonzero(p == n)
    if wrap.size:  # the lap closes for these columns: re-centre on the newest value
        p[wrap] = 0
        ref[wrap] = x[wrap]
        suf[:n, wrap] = _suffix_sums(buf[:, wrap] - ref[wrap])
        pre[wrap] = 0.0
    s1 = S[path + ".s1"]
    s1[:] = suf[p, idx] + pre
    S[path + ".pos"][:] = p
    return ref, s1


def var_push(S: Cols, path: str, n: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RollingVar.push on full windows; returns (mean, m2)."""
    idx = S.idx
    p = S.pos(path)
    buf = S.ring(path + ".buf", n)
    suf, suf2 = S.ring(path + ".suf", n + 1), S.ring(path + ".suf2", n + 1)
    ref, pre, pre2 = S[path + ".ref"], S[path + ".pre"], S[path + ".pre2"]
    buf[p, idx] = x
    d = x - ref
    pre += d
    pre2 += d * d
    p += 1
    wrap = np.flatnonzero(p == n)
    if wrap.size:  # the lap closes for these columns: re-centre on the newest value
        p[wrap] = 0
        ref[wrap] = x[wrap]
        dev = buf[:, wrap] - ref[wrap]
        suf[:n, wrap] = _suffix_sums(dev)
        suf2[:n, wrap] = _suffix_sums(dev * dev)
        pre[wrap] = 0.0
        pre2[wrap] = 0.0
    s1 = S[path + ".s1"]
    s1[:] = suf[p, idx] + pre
    m2 = suf2[p, idx] + pre2 - s1 * s1 / n
    m2 = np.where(m2 > 0.0, m2, 0.0)
    S[path + ".m2"][:] = m2
    S[path + ".pos"][:] = p
    return ref + s1 / n, m2


def var_value(m2: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """RollingVar.var(ddof) of full windows from their m2: exactly 0 for a window of one repeated value."""
    return np.where(m2 > 0.0, m2 / (n - ddof), 0.0)


def max_push(S: Cols, path: str, n: int, x: np.ndarray, is_max: bool) -> np.ndarray:
    """RollingMax/Min over a ring of the window (see :mod:`._layout`); returns the new extreme."""
    t = S[path + ".t"]
    ring = S.ring(path + ".ring", n)
    ring[t.astype(np.intp) % n, S.idx] = x
    t += 1
    return ring.max(axis=0) if is_max else ring.min(axis=0)


def ema_push(S: Cols, path: str, n: int, x: np.ndarray) -> np.ndarray:
    """Ema.push past its seed: TA-Lib's ``(x - prev) * k + prev``."""
    value = S[path + ".value"]
    value[:] = (x - value) * (2.0 / (n + 1)) + value
    return value  # its count is one of the step's COUNTERS


def true_range(h: np.ndarray, l: np.ndarray, prev_close: np.ndarray) -> np.ndarray:
    r = h - l
    up = np.abs(prev_close - h)
    down = np.abs(prev_close - l)
    r = np.where(up > r, up, r)
    return np.where(down > r, down, r)
