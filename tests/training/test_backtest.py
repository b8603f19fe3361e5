"""Backtest arithmetic on series small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.backtest import backtest, baseline_positions, periods_per_year, positions


def test_trades_costs_hit_rate_and_drawdown_by_hand():
    # long +1%, short into +2% (loses), flat, long into -1% (loses); 10 bps per trade
    r = backtest(np.array([1, -1, 0, 1]), np.array([0.01, 0.02, 0.03, -0.01]), np.arange(4) * 60_000,
                 np.array(["A"] * 4), cost_bps=10, timeframe="1m")
    assert r["trades"] == 3 and r["signal_rate"] == 0.75 and r["long_share"] == round(2 / 3, 4)
    assert r["hit_rate"] == round(1 / 3, 4)
    assert r["avg_gross_bps"] == round((0.01 - 0.02 - 0.01) / 3 * 1e4, 4)
    assert r["avg_return_bps"] == round((0.009 - 0.021 - 0.011) / 3 * 1e4, 4)
    assert r["total_return"] == -0.023
    series = np.array([0.009, -0.021, 0.0, -0.011])
    assert r["sharpe"] == round(series.mean() / series.std(ddof=1) * math.sqrt(365 * 24 * 60), 4)
    # equity (log) 0 -> .009 -> -.012 -> -.012 -> -.023: the peak .009 falls to -.023
    assert r["max_drawdown"] == round(1 - math.exp(-0.032), 6)


def test_symbols_at_the_same_time_split_the_capital():
    r = backtest(np.array([1, 1]), np.array([0.02, -0.01]), np.array([0, 0]), np.array(["A", "B"]),
                 cost_bps=0, timeframe="5m")
    assert r["total_return"] == 0.01 and r["hit_rate"] == 0.5 and r["sharpe"] is None  # one period: no std


def test_horizon_scales_the_annualisation():
    args = (np.array([1, 1, 1]), np.array([0.01, 0.0, 0.02]), np.arange(3), np.array(["A"] * 3))
    h1 = backtest(*args, cost_bps=0, timeframe="5m", horizon=1)["sharpe"]
    h4 = backtest(*args, cost_bps=0, timeframe="5m", horizon=4)["sharpe"]
    assert h4 == pytest.approx(h1 / 2, abs=1e-3)


def test_no_trades_give_nulls_not_nan():
    r = backtest(np.zeros(3, dtype=int), np.array([0.1, 0.2, 0.3]), np.arange(3), np.array(["A"] * 3),
                 cost_bps=5, timeframe="1h")
    assert r["trades"] == 0 and r["hit_rate"] is None and r["avg_return_bps"] is None and r["total_return"] == 0.0


def test_positions_follow_the_stream_rule_and_baselines():
    assert positions(np.array([0.65, 0.35, 0.64, 0.5]), 0.3).tolist() == [1, -1, 0, 0]
    assert positions(np.array([0.5]), 0.0).tolist() == [1]  # p = 0.5 is UP in core.signals.decide
    model = np.array([1, 0, -1, 0, 1, 1])
    shuffled = baseline_positions("no_skill", model, np.zeros(6), np.array(["A"] * 3 + ["B"] * 3))
    assert sorted(shuffled[:3]) == sorted(model[:3]) and sorted(shuffled[3:]) == sorted(model[3:])
    assert baseline_positions("always_long", model, np.zeros(6), np.array(["A"] * 6)).tolist() == [1] * 6
    assert periods_per_year("1h") == 8760
