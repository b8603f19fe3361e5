"""The candle agent's logic without a broker: real candles, the real exported model."""

import numpy as np
import pytest

from models.direction import DirectionModel
from core.signals import prediction_id
from core.candle_files import read_candle_file
from features import FeatureState
from streams.scoring import score_candles, state_key
from tests.conftest import CANDLES


@pytest.fixture(scope="module")
def candles():
    return read_candle_file(sorted(CANDLES.glob("*.csv.gz"))[0]).candles[:400]


@pytest.fixture(scope="module")
def model(trained_model):
    return DirectionModel.load(trained_model)


def test_one_prediction_per_candle_and_batches_equal_single_candles(candles, model):
    whole: dict = {}
    batch = score_candles([(c, 1) for c in candles], whole, model, threshold=0.05)
    assert [p["id"] for p in batch.predictions] == [prediction_id(c.symbol, c.timeframe, c.open_time, model.version) for c in candles]

    one_by_one: dict = {}
    singles = [score_candles([(c, 1)], one_by_one, model, threshold=0.05) for c in candles]
    assert [s.predictions[0]["prob_up"] for s in singles] == [p["prob_up"] for p in batch.predictions]
    assert sum(len(s.signals) for s in singles) == len(batch.signals)
    key = state_key(candles[0].symbol, candles[0].timeframe)
    assert whole[key].to_bytes() == one_by_one[key].to_bytes()


def test_signals_only_when_warm_and_confident(candles, model):
    batch = score_candles([(c, None) for c in candles], {}, model, threshold=0.05)
    by_id = {p["id"]: p for p in batch.predictions}
    assert batch.signals, "the real model should be confident about some of 400 real candles"
    for s in batch.signals:
        p = by_id[s["prediction_id"]]
        assert p["ready"] and p["confidence"] >= 0.05 and s["direction"] == p["direction"]
        assert s["entry_price"] == p["close"]
    confident_but_cold = [p for p in batch.predictions if not p["ready"] and p["confidence"] >= 0.05]
    assert not any(s["prediction_id"] in {p["id"] for p in confident_but_cold} for s in batch.signals)


def test_duplicate_and_late_candles_are_rejected_without_touching_state(candles, model):
    states: dict = {}
    score_candles([(c, None) for c in candles[:50]], states, model, threshold=0.5)
    key = state_key(candles[0].symbol, candles[0].timeframe)
    before = states[key].to_bytes()
    batch = score_candles([(candles[49], None), (candles[10], None), (candles[50], None)], states, model, threshold=0.5)
    assert [i for i, _ in batch.rejected] == [0, 1]
    assert all(e.kind == "out_of_order" for _, e in batch.rejected)
    assert len(batch.predictions) == 1 and batch.sources == [2]
    fresh = FeatureState.from_bytes(before)
    fresh.update(candles[50])
    assert states[key].to_bytes() == fresh.to_bytes()


def test_features_in_prediction_are_the_engine_vector(candles, model):
    batch = score_candles([(c, None) for c in candles[:60]], {}, model, threshold=1.0)
    state = FeatureState()
    expected = [state.update(c) for c in candles[:60]]
    np.testing.assert_array_equal(np.array([p["features"] for p in batch.predictions]), np.array(expected))
