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
