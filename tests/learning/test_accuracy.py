"""AccuracyTracker against a plain recomputation, per (version, horizon)."""

from __future__ import annotations

import random

from learning.accuracy import AccuracyTracker


def test_matches_recomputation_and_round_trips():
    rng, acc, history = random.Random(1), AccuracyTracker(windows=(10, 50)), {}
    for _ in range(2000):
        version, horizon = rng.choice(["v1", "v2"]), rng.randint(1, 3)
        ok = rng.random() < (0.6 if version == "v2" else 0.5)
        acc.update({"model_version": version, "horizon": horizon, "direction_correct": ok})
        history.setdefault((version, horizon), []).append(ok)
    for (version, horizon), seq in history.items():
        assert acc.counts(version, horizon, None) == (len(seq), sum(seq))
        assert acc.counts(version, horizon, 50) == (50, sum(seq[-50:]))
        assert acc.accuracy(version, horizon, 10) == sum(seq[-10:]) / 10
    snap = acc.snapshot()
    assert [(s["model_version"], s["horizon"]) for s in snap] == sorted(history)
    assert AccuracyTracker.from_bytes(acc.to_bytes()).snapshot() == snap


def test_outcomes_without_verdict_are_skipped():
    acc = AccuracyTracker()
    assert acc.update({"model_version": "v1", "horizon": 1, "direction_correct": None, "source": "TRADE"}) is False
    assert acc.snapshot() == [] and acc.accuracy("v1", 1) != acc.accuracy("v1", 1)  # NaN before any outcome
