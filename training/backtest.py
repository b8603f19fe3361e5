"""A cost-aware backtest of direction signals: each signal is one trade held for ``horizon`` candles.

Accounting, chosen to be checkable by hand:

- a row's position is +1 (UP signal), -1 (DOWN signal) or 0 (no signal, see :func:`positions`);
- a trade earns ``position * future_return`` (the log return over the horizon) minus ``cost_bps``,
  charged once per trade for entry and exit together;
- the strategy's return series has one value per candle time: the mean over the symbols present at
  that time of each row's net return (0 without a trade), i.e. capital split equally across symbols;
- Sharpe is mean / std (ddof=1) of that series times ``sqrt(periods per year / horizon)``; with
  ``horizon > 1`` consecutive trades overlap, so this is an approximation (stated in the report);
- max drawdown is the largest fall of ``exp(cumulative log return)`` from its running peak (start = 1).

>>> import math, numpy as np
>>> r = backtest(np.array([1, -1, 0, 1]), np.array([0.01, 0.02, 0.03, -0.01]), np.arange(4) * 300_000,
...              np.array(["A"] * 4), cost_bps=10, timeframe="5m")
>>> r["trades"], r["hit_rate"], r["avg_return_bps"], r["total_return"]
(3, 0.3333, -76.6667, -0.023)
>>> r["max_drawdown"] == round(1 - math.exp(-0.032), 6)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.signals import confidence_of
from core.candle import TIMEFRAME_MS

__all__ = ["BASELINES", "backtest", "baseline_positions", "equity_curve", "periods_per_year", "positions"]

_YEAR_MS = 365 * 24 * 3600 * 1000  # crypto trades every day of the year
BASELINES = ("always_long", "last_return_sign", "no_skill")


def periods_per_year(timeframe: str) -> float:
    """Candles of ``timeframe`` in a (365-day) year.

    >>> periods_per_year("5m"), periods_per_year("1d")
    (105120.0, 365.0)
    """
    return _YEAR_MS / TIMEFRAME_MS[timeframe]


def positions(prob_up: np.ndarray, threshold: float) -> np.ndarray:
    """+1 / -1 where the model would emit a signal, else 0: the rule of :func:`core.signals.decide`
    (direction UP when ``p >= 0.5``, a signal when ``|2p - 1| >= threshold``), vectorised.

    >>> positions(np.array([0.9, 0.5, 0.52, 0.1]), threshold=0.3).tolist()
    [1, 0, 0, -1]
    """
    p = np.asarray(prob_up, dtype=np.float64)
    confidence = confidence_of(p)  # as decide() computes it
    direction = np.where(p >= 0.5, 1, -1)
    return np.where(confidence >= threshold, direction, 0).astype(np.int64)


def baseline_positions(name: str, model_positions: np.ndarray, last_return: np.ndarray, symbol: np.ndarray,
                       seed: int = 0) -> np.ndarray:
    """Positions of a baseline on the same rows as the model.

    - ``always_long``: +1 on every row;
    - ``last_return_sign``: the sign of the candle's own return (flat or unknown counts as up, as in
      :func:`training.metrics.direction_metrics`);
    - ``no_skill``: the model's own positions shuffled in time within each symbol (fixed seed): the same
      number of trades and long/short mix, with any link to the outcome destroyed.

    >>> baseline_positions("last_return_sign", np.zeros(3), np.array([0.1, -0.2, np.nan]), np.array(["A"] * 3)).tolist()
    [1, -1, 1]
    """
    n = len(model_positions)
    if name == "always_long":
        return np.ones(n, dtype=np.int64)
    if name == "last_return_sign":
        return np.where(np.nan_to_num(np.asarray(last_return, dtype=np.float64), nan=0.0) < 0, -1, 1).astype(np.int64)
    if name == "no_skill":
        rng = np.random.default_rng(seed)
        out = np.asarray(model_positions, dtype=np.int64).copy()
        for s in dict.fromkeys(symbol.tolist()):
            idx = np.flatnonzero(symbol == s)
            out[idx] = out[idx][rng.permutation(len(idx))]
        return out
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")


def _finite(x: float, digits: int) -> float | None:
    # JSON has no NaN: an undefined figure (no trades, zero variance) is reported as null.
    return round(float(x), digits) if math.isfinite(x) else None


def _series(net: np.ndarray, open_time: np.ndarray) -> np.ndarray:
    """One return per distinct candle time, averaged across the symbols present then, in time order."""
    times, inverse = np.unique(open_time, return_inverse=True)
    sums = np.bincount(inverse, weights=net, minlength=len(times))
    counts = np.bincount(inverse, minlength=len(times))
    return sums / counts


def backtest(position: np.ndarray, future_return: np.ndarray, open_time: np.ndarray, symbol: np.ndarray, *,
             cost_bps: float, timeframe: str, horizon: int = 1) -> dict[str, Any]:
    """Trade statistics of ``position`` against realised ``future_return`` (see the module docstring)."""
    position = np.asarray(position, dtype=np.int64)
    future_return = np.asarray(future_return, dtype=np.float64)
    trade = position != 0
    gross = position * future_return
    net = np.where(trade, gross - cost_bps / 1e4, 0.0)
    n_trades = int(trade.sum())
    series = _series(net, np.asarray(open_time)) if len(net) else np.zeros(0)
    sharpe = float("nan")
    if len(series) > 1 and series.std(ddof=1) > 0:
        sharpe = series.mean() / series.std(ddof=1) * math.sqrt(periods_per_year(timeframe) / horizon)
    equity = np.concatenate([[0.0], np.cumsum(series)])
    drawdown = float(np.max(np.maximum.accumulate(equity) - equity)) if len(equity) else 0.0
    return {
        "trades": n_trades,
        "signal_rate": _finite(n_trades / len(position) if len(position) else float("nan"), 4),
        "long_share": _finite(float((position[trade] > 0).mean()) if n_trades else float("nan"), 4),
        "hit_rate": _finite(float((gross[trade] > 0).mean()) if n_trades else float("nan"), 4),
        "avg_return_bps": _finite(float(net[trade].mean()) * 1e4 if n_trades else float("nan"), 4),
        # before costs; also the round-trip cost at which the average trade breaks even
        "avg_gross_bps": _finite(float(gross[trade].mean()) * 1e4 if n_trades else float("nan"), 4),
        "total_return": _finite(float(net.sum()), 6),
        "sharpe": _finite(sharpe, 4),
        "max_drawdown": _finite(1.0 - math.exp(-drawdown), 6),
        "cost_bps": cost_bps,
    }


def equity_curve(position: np.ndarray, future_return: np.ndarray, open_time: np.ndarray, cost_bps: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(times, cumulative net log return) of the equal-split strategy, for charts."""
    position = np.asarray(position, dtype=np.int64)
    net = np.where(position != 0, position * np.asarray(future_return, dtype=np.float64) - cost_bps / 1e4, 0.0)
    times = np.unique(open_time)
    return times, np.cumsum(_series(net, np.asarray(open_time)))
