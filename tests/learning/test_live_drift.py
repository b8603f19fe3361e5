"""Drift watches armed for the model users run: the default bundle (`make demo`), fed real candles it
never saw (``data/candles/held-out``), through the same batch step as the worker.

A regime change (:func:`streams.regime_change.alternate_moves` from the middle of the series) must raise a
retrain request within 1,500 candles; the unchanged series must raise none. Run with -s for the figures.
"""

from __future__ import annotations

import numpy as np
import pytest

from learning.learner import OutcomeLearner, trigger_key
from models.loading import load_model
from models.profile import REFERENCE_ROWS
from core.candle_files import read_candle_file
from features.names import N_FEATURES
from streams.regime_change import alternate_moves
from streams.series import Position
from streams.series_book import SeriesBook
from streams.step import Models, StepConfig, process_batch
from tests.conftest import HELD_OUT

MAX_DELAY = 1500  # candles after the change
BATCH = 50


@pytest.fixture(scope="module")
def bundle(default_bundle):
    return load_model(default_bundle)


@pytest.fixture(scope="module")
def held_out():
    return read_candle_file(HELD_OUT / "ETC-BTC_5m.csv.gz").candles


def run(bundle, candles, learner=None):
    """The step over ``candles`` in batches; (index of the batch's first candle, request) per retrain request."""
    book = SeriesBook()
    if learner is None:
        learner = OutcomeLearner()
        learner.arm(bundle.version, bundle.profile)
    requests = []
    for start in range(0, len(candles), BATCH):
        batch = [(c, None, Position("candles.5m", 0, start + j)) for j, c in enumerate(candles[start:start + BATCH])]
        result = process_batch(batch, book, Models(bundle), StepConfig(0.55, outcome_loop=True),
                               lambda i: ("partition-0", learner))
        requests += [(start, r) for r in result.retrain_requests]
    return requests, learner


def test_the_default_bundle_carries_what_its_watches_need(bundle):
    profile = bundle.profile
    assert sorted(profile.accuracy) == list(bundle.horizons) == [1, 2, 3, 4, 5]
    assert all(0.5 < a < 0.8 for a in profile.accuracy.values()), profile.accuracy
    assert profile.reference.shape == (REFERENCE_ROWS, N_FEATURES) and np.isfinite(profile.reference).any()


def test_a_regime_change_raises_a_retrain_request_within_1500_candles(bundle, held_out):
    change = len(held_out) // 2
    requests, learner = run(bundle, alternate_moves(held_out, change))
    before = [r for i, r in requests if i + BATCH <= change]
    after = [(i, r) for i, r in requests if i >= change]
    assert not before, [r["reasons"] for r in before]
    assert after, f"no retrain request after the change; watches: {learner.watches()}"
    at, first = after[0]
    print(f"\nfirst request {at - change} candles after the change: {first['reasons']}")
    assert at - change <= MAX_DELAY
    assert first["model_version"] == bundle.version and first["horizon"] == 1
    assert first["training_accuracy"] == bundle.profile.accuracy[1]
    # Where the retrain should start: the change point the trigger estimated from its recent errors.
    assert abs(first["scope"]["since"] - held_out[change].open_time) <= 200 * 300_000


def test_the_unchanged_series_raises_none(bundle, held_out):
    requests, learner = run(bundle, held_out)
    [watch] = [w for w in learner.watches() if "seen" in w]
    print(f"\nunchanged: rolling accuracy {watch['rolling_accuracy']:.3f} (floor {watch['accuracy_floor']:.3f}), "
          f"{watch['seen']} outcomes")
    assert requests == [] and watch["seen"] > 5000 and watch["feature_drift"] == "watching"


def test_a_restored_learner_keeps_its_watches_and_gets_its_reference_again(bundle, held_out):
    _, learner = run(bundle, held_out[:2000])
    blob = learner.to_bytes()
    assert len(blob) < 200_000  # the reference stays with the model, not in every checkpoint
    restored = OutcomeLearner.from_bytes(blob)
    key = trigger_key(bundle.version, 1)
    assert restored.triggers[key].seen == learner.triggers[key].seen
    assert restored.triggers[key].state()["feature_drift"] == "waiting for the model's reference"
    restored.arm(bundle.version, bundle.profile)  # what the worker does when it serves the version
    assert restored.triggers[key].state()["feature_drift"] == "watching"
    # Carrying on from the restored learner gives what the uninterrupted one gives.
    more = held_out[2000:3000]
    a, _ = run(bundle, more, learner)
    b, _ = run(bundle, more, restored)
    assert a == b and restored.triggers[key].state() == learner.triggers[key].state()


def test_a_version_without_a_profile_is_not_watched(bundle, held_out):
    learner = OutcomeLearner()
    requests, learner = run(bundle, alternate_moves(held_out[:3000], 1000), learner)
    assert requests == [] and learner.triggers == {}
