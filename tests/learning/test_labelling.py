"""Labeller: hand-checked outcomes, no look-ahead, gaps, replays, bounded memory, state round trip."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.labelling import Labeller, outcome_id
from core.candle import Candle
from core.errors import InvalidInput

STEP = 300_000


def candle(i: int, close: float) -> Candle:
    return Candle("ETH-BTC", "5m", i * STEP, close, close, close, close, 1.0)


def prediction(i: int, close: float, horizon: int = 1, direction: str = "UP", version: str = "v1") -> dict:
    return {"id": f"p{i}-{version}-h{horizon}", "symbol": "ETH-BTC", "timeframe": "5m", "open_time": i * STEP,
            "close": close, "horizon": horizon, "direction": direction, "model_version": version,
            "features": [float(i), math.nan]}


def test_hand_checked_series():
    closes = [100.0, 101.0, 99.0, 99.0, 103.0]
    lab, out = Labeller("ETH-BTC", "5m"), {}
    for i, c in enumerate(closes):
        for done in lab.observe(candle(i, c)):
            out[(done.outcome["open_time"] // STEP, done.outcome["horizon"])] = done
        lab.add_prediction(prediction(i, c, horizon=1, direction="UP"))
        lab.add_prediction(prediction(i, c, horizon=2, direction="DOWN"))
    # h=1 from candle 0: 100 -> 101, up, UP right
    assert out[(0, 1)].outcome["realized_log_return"] == pytest.approx(math.log(101 / 100))
    assert out[(0, 1)].outcome["direction_correct"] is True and out[(0, 1)].label == 1
    # h=2 from candle 0: 100 -> 99, down, DOWN right
    assert out[(0, 2)].outcome["direction_correct"] is True and out[(0, 2)].label == 0
    # h=1 from candle 2: 99 -> 99, a tie: no verdict, no label (training drops ties)
    assert out[(2, 1)].outcome["realized_log_return"] == 0.0
    assert out[(2, 1)].outcome["direction_correct"] is None and out[(2, 1)].label is None
    # h=2 from candle 2: 99 -> 103, DOWN wrong
    assert out[(2, 2)].outcome["direction_correct"] is False
    assert sorted(out) == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]
    o = out[(1, 2)].outcome
    assert o["id"] == outcome_id("p1-v1-h2", 2) and o["source"] == "LABEL" and o["prediction_id"] == "p1-v1-h2"
    assert o["model_version"] == "v1" and o["symbol"] == "ETH-BTC" and o["timeframe"] == "5m"
    assert out[(1, 2)].features[0] == 1.0 and math.isnan(out[(1, 2)].features[1])
    assert lab.pending == 3  # candle 3's h=2, candle 4's h=1 and h=2 still wait


def test_gap_expires_instead_of_labelling_with_a_later_price():
    lab = Labeller("ETH-BTC", "5m")
    lab.observe(candle(0, 1.0))
    lab.add_prediction(prediction(0, 1.0, horizon=1))
    assert lab.observe(candle(2, 2.0)) == []  # candle 1 is missing
    assert lab.expired == 1 and lab.pending == 0


def test_late_prediction_is_refused_and_replays_are_idempotent():
    lab = Labeller("ETH-BTC", "5m")
    lab.observe(candle(0, 1.0))
    lab.observe(candle(1, 1.0))
    assert lab.add_prediction(prediction(0, 1.0)) is False and lab.late == 1
    assert lab.add_prediction(prediction(1, 1.0)) is True
    assert lab.add_prediction(prediction(1, 1.0)) is False
    assert len(lab.observe(candle(2, 1.1))) == 1
    assert lab.observe(candle(2, 1.1)) == []  # a duplicate candle labels nothing twice


def test_all_horizons_and_wrong_series():
    lab = Labeller("ETH-BTC", "5m", max_horizon=3, all_horizons=True)
    lab.observe(candle(0, 1.0))
    lab.add_prediction(prediction(0, 1.0, horizon=1))
    horizons = [d.outcome["horizon"] for i in range(1, 5) for d in lab.observe(candle(i, 1.0 + i))]
    assert horizons == [1, 2, 3]
    with pytest.raises(InvalidInput):
        lab.add_prediction({**prediction(5, 1.0), "symbol": "LTC-BTC"})
    with pytest.raises(InvalidInput):
        lab.add_prediction(prediction(5, 1.0, horizon=4))


def test_cap_bounds_future_dated_predictions():
    lab = Labeller("ETH-BTC", "5m", max_pending=10)
    for i in range(100, 150):
        lab.add_prediction(prediction(i, 1.0))
    assert lab.pending == 10 and lab.dropped == 40


def test_round_trip_mid_stream_continues_identically():
    a = Labeller("ETH-BTC", "5m", all_horizons=True)
    for i in range(3):
        a.observe(candle(i, 1.0 + i))
        a.add_prediction(prediction(i, 1.0 + i))
    b = Labeller.from_bytes(a.to_bytes())
    for i in range(3, 9):
        ra, rb = a.observe(candle(i, 1.0 + i % 4)), b.observe(candle(i, 1.0 + i % 4))
        assert [x.outcome for x in ra] == [x.outcome for x in rb]
        a.add_prediction(prediction(i, 1.0 + i % 4))
        b.add_prediction(prediction(i, 1.0 + i % 4))
    assert a.to_bytes() == b.to_bytes()


events = st.lists(st.tuples(st.sampled_from(["candle", "skip", "predict"]), st.integers(1, 5),
                            st.floats(0.5, 2.0)), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(events)
def test_property_no_outcome_before_its_horizon_and_each_at_most_once(evts):
    """Random interleavings of candles, gaps and predictions: an outcome comes only from the candle exactly
    ``h`` candles after its prediction, carries that candle's return, and is never emitted twice."""
    lab, t, closes, seen = Labeller("ETH-BTC", "5m", all_horizons=True), 0, {}, set()
    for kind, h, price in evts:
        if kind == "predict":
            if t in closes:
                lab.add_prediction(prediction(t, closes[t], horizon=h))
            continue
        t += 1 if kind == "candle" else 2  # "skip": a missing candle
        closes[t] = price
        for done in lab.observe(candle(t, price)):
            o = done.outcome
            start, horizon = o["open_time"] // STEP, o["horizon"]
            assert start + horizon == t  # labelled by exactly the candle at t0 + h, never earlier or later
            assert o["realized_log_return"] == pytest.approx(math.log(price / closes[start]))
            assert (o["id"]) not in seen
            seen.add(o["id"])
        assert all(target > t for target in lab._pending)  # nothing pending whose time has passed
        assert lab.pending <= 5 * 5  # bounded: at most max_horizon predictions x horizons in flight


@given(st.text(max_size=40), st.integers(1, 5), st.sampled_from(["LABEL", "TRADE", 'odd"source']))
def test_outcome_ids_are_the_hash_of_their_json_definition(prediction_id: str, horizon: int, source: str) -> None:
    import hashlib
    import json

    from learning.labelling import outcome_id

    key = json.dumps(["outcome", source, prediction_id, horizon], separators=(",", ":"))
    assert outcome_id(prediction_id, horizon, source) == hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
