"""The KS statistic against its definition: the largest CDF gap over every point of either sample."""

import numpy as np
from hypothesis import given, settings, strategies as st

from learning.features_drift import ks_two_sample, reference_cdf


def gap_over_all_points(reference_sorted: np.ndarray, sample: np.ndarray) -> float:
    b = np.sort(sample)
    points = np.concatenate((reference_sorted, b))
    return float(np.max(np.abs(np.searchsorted(reference_sorted, points, "right") / len(reference_sorted)
                               - np.searchsorted(b, points, "right") / len(b))))


values = st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-5, 5)), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(values, values)
def test_the_statistic_is_the_gap_at_every_point_ties_included(reference: list, sample: list) -> None:
    ref = np.sort(np.array(reference))
    d, _ = ks_two_sample(ref, np.array(sample), reference_cdf(ref))
    assert d == gap_over_all_points(ref, np.array(sample))
