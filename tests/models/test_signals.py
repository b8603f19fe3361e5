"""Prediction / signal ids and the decision rule."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.signals import decide, prediction_id, signal_id

BASE = ("ETH-BTC", "5m", 1515560100000, "lgbm-h1-0123456789ab")


@pytest.mark.parametrize("make", [prediction_id, signal_id])
def test_ids_are_deterministic_and_short_hex(make):
    a = make(*BASE)
    assert a == make(*BASE)
    assert re.fullmatch(r"[0-9a-f]{32}", a)


@pytest.mark.parametrize("make", [prediction_id, signal_id])
def test_ids_differ_when_any_input_differs(make):
    variants = [
        ("LTC-BTC", "5m", 1515560100000, "lgbm-h1-0123456789ab"),
        ("ETH-BTC", "1m", 1515560100000, "lgbm-h1-0123456789ab"),
        ("ETH-BTC", "5m", 1515560400000, "lgbm-h1-0123456789ab"),
        ("ETH-BTC", "5m", 1515560100000, "lgbm-h2-0123456789ab"),
    ]
    ids = {make(*BASE), *(make(*v) for v in variants)}
    assert len(ids) == 1 + len(variants)


def test_prediction_and_signal_ids_never_collide():
    assert prediction_id(*BASE) != signal_id(*BASE)


def test_separator_in_a_symbol_cannot_forge_another_id():
    # With a naive "a|b|c" key these two would be the same string.
    assert prediction_id("A|5m", "5m", 0, "v") != prediction_id("A", "5m|5m", 0, "v")


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.sampled_from(["1m", "5m"]),
                          st.integers(0, 2**40), st.text(max_size=8)), min_size=2, max_size=20, unique=True))
def test_distinct_inputs_distinct_ids(keys):
    assert len({prediction_id(*k) for k in keys}) == len(keys)


@pytest.mark.parametrize("p, threshold, expected", [
    (0.8, 0.6, ("UP", 0.6, True)),     # exactly at the threshold is a signal
    (0.2, 0.6, ("DOWN", 0.6, True)),
    (0.55, 0.2, ("UP", 0.1, False)),
    (0.5, 0.0, ("UP", 0.0, True)),
    (0.5, 0.1, ("UP", 0.0, False)),
    (1.0, 1.0, ("UP", 1.0, True)),
    (0.0, 0.5, ("DOWN", 1.0, True)),
])
def test_decide(p, threshold, expected):
    assert tuple(decide(p, threshold)) == expected


@given(st.floats(0, 1), st.floats(0, 1))
def test_decide_properties(p, threshold):
    d = decide(p, threshold)
    assert 0.0 <= d.confidence <= 1.0
    assert d.direction == ("UP" if p >= 0.5 else "DOWN")
    assert d.is_signal == (d.confidence >= threshold)


@pytest.mark.parametrize("p, threshold", [(-0.1, 0.5), (1.1, 0.5), (float("nan"), 0.5), (0.7, 1.5), (0.7, -1)])
def test_decide_refuses_nonsense(p, threshold):
    with pytest.raises(ValueError):
        decide(p, threshold)
