"""The River online model on real candles: the state round trip (a worker restart) continues identically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learning.online import OnlineModel
from core.errors import DecodeError
from features import FEATURE_NAMES


def test_restart_continues_identically(replays):
    rows = [(d.features, d.label) for d in replays[0].labelled if d.label is not None]
    live = OnlineModel()
    for x, y in rows[:1500]:
        live.learn_one(x, y)
    blob = live.to_bytes()  # what the Faust table holds when the worker dies
    restarted = OnlineModel.from_bytes(blob)
    assert restarted.version == live.version and restarted.n_learned == 1500
    for x, y in rows[1500:2500]:
        assert restarted.predict_proba_one(x) == live.predict_proba_one(x)  # bit-identical, not approximately
        live.learn_one(x, y)
        restarted.learn_one(x, y)
    assert restarted.n_learned == live.n_learned == 2500
    # Pickle bytes may differ (memo order); the learned numbers may not.
    assert dict(restarted.pipeline["LogisticRegression"].weights) == dict(live.pipeline["LogisticRegression"].weights)
    assert dict(restarted.pipeline["StandardScaler"].vars) == dict(live.pipeline["StandardScaler"].vars)
    cold = OnlineModel()
    assert cold.predict_proba_one(rows[2600][0]) == 0.5 != live.predict_proba_one(rows[2600][0])


def test_prequential_accuracy_on_real_candles_beats_chance(replays):
    model, right, n = OnlineModel(), 0, 0
    for d in replays[1].labelled:
        if d.label is None:
            continue
        right += model.predict_one(d.features) == d.label
        n += 1
        model.learn_one(d.features, d.label)
    assert right / n > 0.55


def test_nan_features_and_mapping_input():
    m = OnlineModel()
    x = [math.nan] * len(FEATURE_NAMES)
    m.learn_one(x, 1)  # all missing: learns the intercept only, no error
    assert 0.0 < m.predict_proba_one({"rsi_14": 55.0, "macd": math.nan}) < 1.0
    with pytest.raises(ValueError):
        m.predict_proba_one([0.0] * 3)  # a vector of the wrong length is a bug, not a prediction


def test_versions_name_the_configuration_and_bad_blobs_are_refused():
    assert OnlineModel().version == OnlineModel().version != OnlineModel(horizon=2).version
    blob = OnlineModel().to_bytes()
    with pytest.raises(DecodeError):
        OnlineModel.from_bytes(b"XXXX" + blob[4:])
    with pytest.raises(DecodeError):
        OnlineModel.from_bytes(blob.replace(b'"river": "', b'"river": "0.0.0-', 1))
    with pytest.raises(ValueError):
        OnlineModel(kind="nope")
    np.testing.assert_equal(OnlineModel.from_bytes(blob).n_learned, 0)


def test_predict_many_is_predict_proba_one_per_row_after_every_kind_of_learning():
    """Row by row what predict_proba_one gives, whichever way the model learned last (its arrays are read
    out of River once per learning step, so a stale copy would show here)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 41))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = np.nan_to_num(x[:, 11]) > 0
    model = OnlineModel()
    probe = rng.normal(size=(20, 41))
    for learn in (lambda: model.learn_one(x[0], y[0]), lambda: model.learn_many(x[:200], y[:200]),
                  lambda: [model.learn_one(r, t) for r, t in zip(x[200:210], y[200:210])],
                  lambda: model.learn_many(x[210:400], y[210:400])):
        learn()
        many = model.predict_many(probe)
        assert np.allclose(many, [model.predict_proba_one(row.tolist()) for row in probe], rtol=0, atol=1e-12)
