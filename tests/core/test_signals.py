"""core/signals.py: one confidence formula, the same float whether given a scalar or an array."""

import numpy as np
from hypothesis import given, strategies as st

from core.signals import confidence_of, decide


@given(st.floats(min_value=0.0, max_value=1.0))
def test_a_scalar_confidence_is_the_array_formula_bit_for_bit(p: float) -> None:
    assert confidence_of(p) == confidence_of(np.array([p]))[0]
    assert decide(p, 0.5).confidence == float(confidence_of(np.array([p]))[0])


def test_a_threshold_of_0_6_passes_at_0_8() -> None:  # why the formula rounds to 12 digits
    assert confidence_of(0.8) == 0.6 and decide(0.8, 0.6).is_signal


def test_the_array_confidence_is_numpys_rounding_to_the_bit():
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.random(100_000), 0.5 + rng.normal(0, 1e-9, 10_000), [0.0, 0.5, 1.0, np.nan]])
    for shape in ((-1,), (-1, 2)):
        x = p[: len(p) // 2 * 2].reshape(shape)
        got = confidence_of(x)
        assert got.shape == x.shape
        np.testing.assert_array_equal(got, np.round(np.abs(2.0 * x - 1.0), 12))
    assert confidence_of(np.array(0.8)) == 0.6  # a 0-d array
