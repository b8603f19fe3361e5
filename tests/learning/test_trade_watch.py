"""TRADE outcomes feed the drift watch: a version whose trades lose money asks for a retrain, one whose
trades pay does not; the watch survives a restart; trades of a version not yet watched are counted only."""

from __future__ import annotations

import pickle

import pytest

from learning._state import dump_pickle
from learning.drift import TradeLosses
from learning.learner import OutcomeLearner, trigger_key
from learning.retrain import RetrainTrigger, TriggerConfig
from learning.trades import trade_outcome


class Profile:
    def __init__(self, accuracy):
        self.accuracy, self.reference = accuracy, None


def label(i: int, version: str = "v1") -> dict:
    return {"id": f"o{i}", "source": "LABEL", "model_version": version, "symbol": "ETH-BTC", "timeframe": "5m",
            "horizon": 1, "open_time": 300_000 * i, "direction_correct": i % 5 < 3,
            "realized_log_return": 0.001 * (1 if i % 2 else -1)}


def trade(i: int, pnl: float, version: str = "v1") -> dict:
    return trade_outcome({"signal_id": f"s{i}", "symbol": "ETH-BTC", "timeframe": "5m", "open_time": 300_000 * (300 + i),
                          "horizon": 1, "model_version": version, "pnl": pnl, "status": "closed"})


def watched_learner() -> OutcomeLearner:
    learner = OutcomeLearner()
    learner.arm("v1", Profile({1: 0.6}))
    for i in range(250):  # enough labels to know the version's return scale: the watch exists
        assert learner.update(label(i), None) is None
    assert trigger_key("v1", 1) in learner.triggers
    return learner


def test_losing_trades_ask_for_a_retrain_once_a_window_shows_it():
    learner = watched_learner()
    requests = [r for r in (learner.update(trade(i, 0.4 if i % 3 == 0 else -0.6), None) for i in range(150)) if r]
    assert len(requests) == 1 and requests[0]["reasons"] == ["trades_losing"]
    evidence = requests[0]["evidence"]["trades_losing"]
    assert evidence["trades"] == 100 and evidence["mean_pnl"] < 0 and evidence["t_statistic"] < -2.33
    assert learner.trades.snapshot()[0]["trades"] == 150  # P&L is still counted per version
    assert learner.triggers[trigger_key("v1", 1)].state()["trades_judged"] == 50  # the window started over


def test_paying_trades_and_noise_ask_for_nothing():
    learner = watched_learner()
    assert not any(learner.update(trade(i, 0.5 if i % 2 else -0.45), None) for i in range(400))
    noisy = watched_learner()  # a break-even strategy: the t test keeps quiet on its noise
    assert not any(noisy.update(trade(i, [0.5, -0.5, 0.3, -0.3][i % 4]), None) for i in range(400))


def test_trades_of_a_version_not_watched_yet_are_only_counted():
    learner = OutcomeLearner()
    assert not any(learner.update(trade(i, -1.0, "v9"), None) for i in range(200))
    assert learner.trades.snapshot()[0]["trades"] == 200 and not learner.triggers


def test_the_trade_watch_survives_a_restart_and_obeys_the_cooldown():
    trig = RetrainTrigger("v1", 0.6, 0.001, config=TriggerConfig(trade_window=20, cooldown_ms=86_400_000))
    for i in range(15):
        assert trig.update_trade(trade(i, -1.0 + 0.1 * (i % 2))) is None
    restored = RetrainTrigger.from_bytes(trig.to_bytes())
    first = [restored.update_trade(trade(i, -1.0 + 0.1 * (i % 2))) for i in range(15, 20)]
    assert first[:-1] == [None] * 4 and first[-1]["reasons"] == ["trades_losing"]
    # the next window within a day of the request: latched, not sent
    assert not any(restored.update_trade(trade(i, -1.0 + 0.1 * (i % 2))) for i in range(20, 60))
    assert restored.latched


def test_a_watch_written_before_trades_were_watched_is_restored():
    trig = RetrainTrigger("v1", 0.6, 0.001)
    old = pickle.loads(pickle.dumps(trig))
    del old.trade_losses
    restored = RetrainTrigger.from_bytes(dump_pickle("retrain-trigger", 2, old))
    assert isinstance(restored.trade_losses, TradeLosses) and restored.update_trade(trade(0, -1.0)) is None


@pytest.mark.parametrize("window, z", [(5, 2.33), (100, 0.0)])
def test_bad_settings_are_refused(window, z):
    with pytest.raises(ValueError):
        TradeLosses(window, z)


def test_the_adaptive_threshold_can_judge_signals_by_their_trades():
    """CANDLEFLOW_ADAPTIVE_THRESHOLD_SOURCE=trades: a version's threshold rises on its trades' losses (judged
    when the partition's clock moves), and labels no longer count for it; with labels, trades do not."""
    from learning.threshold import ThresholdConfig

    by_trades = OutcomeLearner()
    by_trades.configure_thresholds(ThresholdConfig(base=0.3, ceiling=0.6, from_trades=True))
    for i in range(100):
        by_trades.update(trade(i, 0.2 if i % 4 == 0 else -0.3), None)
        by_trades.queue(label(i), None, confidence=0.9)  # right 60 % of the time: no reason to be careful
    by_trades.advance(10**12)
    [event] = by_trades.threshold_events
    assert (event["model_version"], event["from"], event["to"], event["mode"]) == ("v1", 0.3, 0.35, "conservative")
    assert event["hit_rate"] == 0.25 and event["mean_pnl"] < 0

    by_labels = OutcomeLearner()
    by_labels.configure_thresholds(ThresholdConfig(base=0.3, ceiling=0.6))
    for i in range(100):
        by_labels.update(trade(i, -0.3), None)
    by_labels.advance(10**12)
    assert by_labels.threshold_events == []
