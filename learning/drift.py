"""Drift detectors on the outcome stream: each answers "did something change?" with its evidence or None.

- :class:`ErrorDrift`: ADWIN (``river.drift.ADWIN``) on the error stream (1 = wrong direction). ADWIN cuts
  its window on a change either way; only a change *up* in error is reported, since a model getting
  better is no reason to retrain it.
- :class:`ReturnDrift`: Page-Hinkley (``river.drift.PageHinkley``) on realised log returns divided by the
  training period's return standard deviation, so one threshold works for every symbol and timeframe.
  Measured on the real candles (docs/learning.md): River's default threshold 50 fires every ~1,000 candles
  on ordinary trends; 200 fired once in ~44,000 outcomes (UNITTEST-BTC 1m), hence the default.
- :class:`AccuracyFloor`: rolling accuracy below ``fraction`` x the training-time accuracy, judged only on
  a full window (a 500-outcome window has a standard error of ~2.2 points).
- :class:`TradeLosses`: what a trading engine made of the signals (TRADE outcomes): the mean P&L of the
  last ``window`` trades significantly below zero (one-sided t statistic under ``-z``). Labels say whether
  a direction was right; trades say whether acting on it paid, costs and sizing included.

Feature-distribution drift is in :mod:`learning.features_drift`; :mod:`learning.retrain` combines them.

>>> det = ErrorDrift()
>>> hits = [det.update(correct=i < 1000 or i % 4 == 0) for i in range(2000)]   # error 0 -> 0.75
>>> first = next(i for i, e in enumerate(hits) if e); 1000 < first < 1100, hits[first]["error_after"] > hits[first]["error_before"]
(True, True)
>>> floor = AccuracyFloor(training_accuracy=0.7, fraction=0.8, window=100)
>>> [floor.update(i % 2 == 0) for i in range(100)][-1]
{'rolling_accuracy': 0.5, 'training_accuracy': 0.7, 'floor': 0.56, 'window': 100}
>>> losses = TradeLosses(window=50)
>>> [losses.update(1.0 if i % 2 else -0.9) for i in range(50)][-1] is None     # winning on average
True
>>> evidence = [losses.update(0.5 if i % 3 == 0 else -1.0) for i in range(50)][-1]
>>> evidence["trades"], evidence["mean_pnl"], evidence["hit_rate"]
(50, -0.49, 0.34)
"""

from __future__ import annotations

from collections import deque
from typing import Any

from river import drift

__all__ = ["AccuracyFloor", "ErrorDrift", "ReturnDrift", "TradeLosses"]


class ErrorDrift:
    """ADWIN on the 0/1 error stream; reports a rise in the error rate.

    With ``training_error``, only a rise to more than ``training_error + min_rise`` is reported: ADWIN
    also cuts its window when a model that did better than in training settles back to it (measured on
    the real candles with the default bundle: cuts to an error 0.3-2.4 points above the training error
    on unchanged data, against 10-20 points after a regime change).
    """

    def __init__(self, delta: float = 0.002, training_error: float | None = None, min_rise: float = 0.05) -> None:
        self.delta, self.training_error, self.min_rise = delta, training_error, min_rise
        self._adwin = drift.ADWIN(delta=delta)

    def update(self, correct: bool) -> dict[str, Any] | None:
        before = self._adwin.estimation
        self._adwin.update(0.0 if correct else 1.0)
        after = self._adwin.estimation
        if not self._adwin.drift_detected or after <= before:
            return None
        if self.training_error is not None and after <= self.training_error + self.min_rise:
            return None
        return {"error_before": before, "error_after": after, "window": self._adwin.width, "delta": self.delta,
                "training_error": self.training_error}

    def reset(self) -> None:
        self._adwin = drift.ADWIN(delta=self.delta)

    def width(self) -> int:
        """Outcomes in ADWIN's window: it shrinks when a change is cut off."""
        return int(self._adwin.width)


class ReturnDrift:
    """Page-Hinkley on standardised realised returns; reports a shift of their mean either way."""

    def __init__(self, return_std: float, threshold: float = 200.0, delta: float = 0.005,
                 min_instances: int = 30) -> None:
        if not return_std > 0:
            raise ValueError(f"return_std must be positive, got {return_std}")
        self.return_std, self.threshold, self.delta, self.min_instances = return_std, threshold, delta, min_instances
        self.reset()

    def update(self, log_return: float) -> dict[str, Any] | None:
        z = log_return / self.return_std
        self._n += 1
        self._sum += z
        self._ph.update(z)
        if self._ph.drift_detected:
            evidence = {"mean_z_since_reset": self._sum / self._n, "n": self._n, "threshold": self.threshold}
            self._n, self._sum = 0, 0.0  # River restarts its statistics after a detection too
            return evidence
        return None

    def statistic(self) -> float:
        """The mean standardised return since the last reset (0 before any)."""
        return self._sum / self._n if self._n else 0.0

    def reset(self) -> None:
        self._ph = drift.PageHinkley(min_instances=self.min_instances, delta=self.delta, threshold=self.threshold)
        self._n, self._sum = 0, 0.0


class AccuracyFloor:
    """Rolling accuracy over ``window`` outcomes below ``fraction * training_accuracy``."""

    def __init__(self, training_accuracy: float, fraction: float = 0.8, window: int = 500) -> None:
        if not 0.0 < training_accuracy <= 1.0 or not 0.0 < fraction <= 1.0:
            raise ValueError(f"training_accuracy and fraction must be in (0, 1], got {training_accuracy}, {fraction}")
        self.training_accuracy, self.fraction, self.window = training_accuracy, fraction, window
        self.reset()

    @property
    def floor(self) -> float:
        return round(self.fraction * self.training_accuracy, 12)

    def update(self, correct: bool) -> dict[str, Any] | None:
        if len(self._recent) == self.window:
            self._correct -= self._recent[0]
        self._recent.append(int(correct))
        self._correct += int(correct)
        if len(self._recent) < self.window:
            return None
        rolling = self._correct / self.window
        if rolling < self.floor:
            return {"rolling_accuracy": rolling, "training_accuracy": self.training_accuracy,
                    "floor": self.floor, "window": self.window}
        return None

    def rolling_accuracy(self) -> float | None:
        """Accuracy over the outcomes held (None before any)."""
        return self._correct / len(self._recent) if self._recent else None

    def reset(self) -> None:
        self._recent: deque[int] = deque(maxlen=self.window)
        self._correct = 0


class TradeLosses:
    """The last ``window`` trades' mean P&L below zero with a one-sided t statistic under ``-z``
    (z = 2.33: about 1 % of windows of a strategy that breaks even would cross it by chance)."""

    def __init__(self, window: int = 100, z: float = 2.33) -> None:
        if window < 10 or z <= 0.0:
            raise ValueError(f"window must be at least 10 and z positive, got {window}, {z}")
        self.window, self.z = window, z
        self.reset()

    def update(self, pnl: float) -> dict[str, Any] | None:
        self._pnl.append(float(pnl))
        n = len(self._pnl)
        if n < self.window:
            return None
        mean = sum(self._pnl) / n
        var = sum((x - mean) ** 2 for x in self._pnl) / (n - 1)
        t = mean / (var / n) ** 0.5 if var > 0.0 else (-float("inf") if mean < 0.0 else 0.0)
        if mean < 0.0 and t < -self.z:
            return {"trades": n, "mean_pnl": round(mean, 10), "hit_rate": round(sum(x > 0.0 for x in self._pnl) / n, 4),
                    "t_statistic": round(t, 4) if t != -float("inf") else None, "z": self.z}
        return None

    @property
    def judged(self) -> int:
        """Trades in the window now."""
        return len(self._pnl)

    def reset(self) -> None:
        self._pnl: deque[float] = deque(maxlen=self.window)
