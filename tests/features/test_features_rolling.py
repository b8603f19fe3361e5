"""The rolling primitives against numpy over random streams, including long ones (drift)."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from features.rolling import Lag, RollingMax, RollingMin, RollingSum, RollingVar

SUBNORMAL = 2.0 ** -1074  # the spacing of float64 near zero

# Windows where large and tiny values meet (1.0 leaving a window of 0.0 and 1e-9) are where a
# running sum that subtracts departed values loses the small ones; they must come out right.
values = st.lists(st.one_of(st.sampled_from([0.0, 1.0, 1e-9]), st.floats(-1e6, 1e6)), min_size=1, max_size=200)


@settings(max_examples=60, deadline=None)
@given(xs=values, n=st.integers(1, 30))
@example(xs=[1.0, 0.0, 1e-9, 0.0], n=3)  # the departed 1.0 once left 1.00000008e-9 for a sum of 1e-9
@example(xs=[1.0, 0.0, 0.0, 1e-9], n=3)  # ... and a variance of 0.0 for 3.3e-19
@example(xs=[0.0, 1.2569897549753105e-158], n=2)  # a variance in the subnormal range
def test_primitives_equal_numpy_windows(xs, n):
    s, v, hi, lo, lag = RollingSum(n), RollingVar(n), RollingMax(n), RollingMin(n), Lag(n)
    for i, x in enumerate(xs):
        for p in (s, v, hi, lo, lag):
            p.push(x)
        w = np.array(xs[max(0, i - n + 1):i + 1])
        scale = np.abs(w).max() * len(w) + 1e-300
        assert abs(s.value - w.sum()) <= 1e-12 * scale
        assert hi.value == w.max() and lo.value == w.min()
        assert lag.ago(0) == x and lag.ago(len(w) - 1) == w[0]
        if len(w) > 1:
            # relative to the variance and to the values' magnitude; squares that underflow into
            # the subnormal range are only resolved to 2**-1074 each, whatever the algorithm
            tol = 1e-9 * (w.var(ddof=1) + 1e-12 * np.abs(w).max() ** 2) + 4 * len(w) * SUBNORMAL
            assert abs(v.var(1) - w.var(ddof=1)) <= tol
        if (w == w[0]).all():
            assert v.var(0) == 0.0  # a flat window is exactly flat
        if not w.any():
            assert s.value == 0.0  # so is an all-zero one


def test_long_stream_does_not_drift():
    rng = np.random.default_rng(1)
    xs = rng.lognormal(0, 2, 50_000) * 1e3
    s, v = RollingSum(20), RollingVar(20)
    for x in xs.tolist():
        s.push(x)
        v.push(x)
    w = xs[-20:]
    assert abs(s.value - w.sum()) <= 1e-15 * w.sum() * 20
    assert abs(v.var(0) - w.var()) <= 1e-12 * w.var()


@settings(max_examples=30, deadline=None)
@given(xs=values, n=st.integers(1, 30), cut=st.integers(0, 200))
def test_dump_load_continues_identically(xs, n, cut):
    cut = min(cut, len(xs))
    for cls in (RollingSum, RollingVar, RollingMax, RollingMin, Lag):
        a = cls(n)
        for x in xs[:cut]:
            a.push(x)
        b = cls(n)
        assert b.load(a.dump(), 0) == len(a.dump())
        for x in xs[cut:]:
            a.push(x)
            b.push(x)
        assert a.dump() == b.dump()
