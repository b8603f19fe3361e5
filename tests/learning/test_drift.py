"""Drift detectors and the retrain trigger's anti-storm gates; KS on the real candles."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.features_drift import FeatureDrift, holm_reject
from learning.retrain import RetrainTrigger, TriggerConfig
from features.names import INDEX


def _outcome(i: int, ok: bool) -> dict:
    return {"model_version": "v1", "timeframe": "5m", "horizon": 1, "open_time": 300_000 * i,
            "direction_correct": ok, "realized_log_return": 0.001 * (1 if i % 2 else -1)}


def test_no_storm_cooldown_and_min_samples():
    """Always wrong for 20,000 outcomes (~69 days of 5m candles): one request per cooldown at most."""
    cfg = TriggerConfig(min_samples=500, cooldown_ms=24 * 3_600_000)
    trig = RetrainTrigger("v1", 0.6, 0.001, config=cfg)
    requests = [r for r in (trig.update(_outcome(i, False)) for i in range(20_000)) if r]
    assert requests[0]["outcomes_since_last"] >= 500
    gaps = np.diff([r["time"] for r in requests])
    assert (gaps >= cfg.cooldown_ms).all() and len(requests) <= 20_000 * 300_000 // cfg.cooldown_ms + 1


def test_other_versions_are_ignored_and_state_round_trips():
    trig = RetrainTrigger("v1", 0.6, 0.001, config=TriggerConfig(min_samples=100, accuracy_window=100))
    assert trig.update({**_outcome(0, False), "model_version": "v2"}) is None and trig.seen == 0
    for i in range(150):
        trig.update(_outcome(i, i % 5 < 3))
    copy = RetrainTrigger.from_bytes(trig.to_bytes())
    a = [trig.update(_outcome(i, i % 3 == 0)) for i in range(150, 600)]
    b = [copy.update(_outcome(i, i % 3 == 0)) for i in range(150, 600)]
    assert a == b and any(a)


def test_feature_drift_quiet_on_real_candles_and_fires_on_a_broken_feed(replays):
    """Real windows vs the training reference: no alarm. The same candles with returns and volatilities
    five times larger (a feed in the wrong unit, a different market): an alarm at the first check."""
    replay = replays[0]
    quiet = FeatureDrift(replay.reference)
    assert [e for e in (quiet.update(d.features) for d in replay.labelled) if e] == []
    broken = FeatureDrift(replay.reference)
    scale = [INDEX[n] for n in ("log_return_1", "log_return_5", "log_return_15", "volatility_5", "volatility_15",
                                "volatility_30", "sma_5_norm", "sma_15_norm", "sma_30_norm", "ema_5_norm",
                                "ema_15_norm", "ema_30_norm", "vwap_deviation", "bb_width", "roc_10")]
    hits = []
    for i, d in enumerate(replay.labelled[:1000]):
        x = np.array(d.features)
        x[scale] *= 5.0
        if (e := broken.update(x)) is not None:
            hits.append((i, e))
    assert hits and hits[0][0] == broken.window - 1 and hits[0][1]["drifted"] >= hits[0][1]["tested"] / 2


def test_feature_drift_tests_a_close_of_many_symbols_once(replays, monkeypatch):
    """2,000 symbols' outcomes of one close arrive together: the window is tested once for that close, not
    every ``every`` outcomes of it; the next close is tested as soon as it arrives. Without times (one series
    read in order) the cadence is ``every`` outcomes as before."""
    replay = replays[0]
    rows = [d.features for d in replay.labelled[:1200]]
    timed, untimed = FeatureDrift(replay.reference, window=200, every=100), FeatureDrift(replay.reference, window=200, every=100)
    tests: list[tuple[str, int]] = []
    for name, fd in (("timed", timed), ("untimed", untimed)):
        real = fd.check
        monkeypatch.setattr(fd, "check", lambda real=real, name=name, fd=fd: tests.append((name, fd._filled)) or real())
    for i, x in enumerate(rows):  # closes of 500 symbols: outcomes 0-499 at t=1, 500-999 at t=2, ...
        timed.update(x, at=1 + i // 500)
        untimed.update(x)
    assert [n for name, n in tests if name == "timed"] == [200, 501, 1001]
    assert [n for name, n in tests if name == "untimed"] == list(range(200, 1201, 100))
    monkeypatch.undo()  # the counting wrappers are not part of the state
    restored = pickle.loads(pickle.dumps(timed))
    assert restored.update(rows[0], at=3) is None and restored._since_check == timed._since_check + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_is_between_bonferroni_and_uncorrected(p, alpha):
    reject, p = holm_reject(p, alpha), np.array(p)
    assert (reject >= (p <= alpha / len(p))).all() and (reject <= (p <= alpha)).all()
    if reject.any():  # step-down: everything smaller than a rejected p-value is rejected too
        assert (reject[p < p[reject].max()]).all()


def test_a_request_says_since_when_the_errors_rose():
    rng = np.random.default_rng(3)
    trig = RetrainTrigger("v1", training_accuracy=0.6, return_std=0.01,
                          config=TriggerConfig(min_samples=200, cooldown_ms=0))
    requests = []
    for i in range(3000):
        right = rng.random() < (0.62 if i < 1800 else 0.35)
        out = {"model_version": "v1", "timeframe": "5m", "horizon": 1, "open_time": 300_000 * i,
               "direction_correct": bool(right), "realized_log_return": 0.001 if right else -0.001}
        if (r := trig.update(out)) is not None:
            requests.append(r)
    first = next(r for r in requests if r["time"] > 300_000 * 1800)
    assert abs(first["scope"]["since"] // 300_000 - 1800) <= 60, first["scope"]
    assert trig.changed_since() is not None and RetrainTrigger.from_bytes(trig.to_bytes()).changed_since() == trig.changed_since()
