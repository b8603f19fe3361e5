"""The retrain trigger: every drift signal about one model version, turned into at most one retrain request
per cooldown.

:class:`RetrainTrigger` feeds each Outcome of its version to :class:`~learning.drift.ErrorDrift` (ADWIN on
errors), :class:`~learning.drift.ReturnDrift` (Page-Hinkley on returns),
:class:`~learning.features_drift.FeatureDrift` (KS against the training reference, when given a reference
and the outcome's features) and :class:`~learning.drift.AccuracyFloor`. A detection is *latched* until the
gates open, so evidence seen during a cooldown is not lost:

- ``min_samples`` outcomes since the start (or the last request), so a few unlucky outcomes cannot fire it;
- ``cooldown_ms`` since the last request. Time is **event time** (the close of the label candle) unless
  ``now_ms`` is given, so a replay of history behaves like the live run.

After a request every detector starts over: the next request needs fresh evidence, not the same evidence
again. The request is a plain dict (a ``retrain-requests`` record) with the reasons and their numbers.

>>> trig = RetrainTrigger("v1", training_accuracy=0.6, return_std=0.01,
...                       config=TriggerConfig(min_samples=200, accuracy_window=200, cooldown_ms=86_400_000))
>>> def outcome(i, ok):
...     return {"model_version": "v1", "timeframe": "5m", "horizon": 1, "open_time": 300_000 * i,
...             "direction_correct": ok, "realized_log_return": 0.001 if i % 2 else -0.001}
>>> [trig.update(outcome(i, i % 5 < 3)) for i in range(400)].count(None)    # 60 % right, as in training
400
>>> reqs = [r for r in (trig.update(outcome(i, i % 5 == 0)) for i in range(400, 800)) if r]
>>> [(r["outcomes_seen"], r["reasons"]) for r in reqs]      # 20 % right: once, then once a day at most
[(462, ['accuracy_below_training']), (750, ['accuracy_below_training'])]
>>> reqs[0]["evidence"]["accuracy_below_training"]["rolling_accuracy"], reqs[1]["time"] - reqs[0]["time"]
(0.475, 86400000)
>>> RetrainTrigger.from_bytes(trig.to_bytes()).requests
2
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from learning._state import dump_pickle, load_pickle
from learning.drift import AccuracyFloor, ErrorDrift, ReturnDrift, TradeLosses
from learning.features_drift import FeatureDrift
from core.candle import timeframe_ms

__all__ = ["RetrainTrigger", "TriggerConfig"]

CHANGE_WINDOW = 2048  # outcomes the change point is looked for in (~18 KB of state)
MIN_SEGMENT = 100  # outcomes on either side of a change point
_FORMAT = 2  # 2: per horizon, the KS reference left out of the state (given again by the model)


@dataclass(frozen=True)
class TriggerConfig:
    """Detector settings and the anti-storm gates; defaults measured on the real candles (docs/learning.md)."""

    min_samples: int = 500
    cooldown_ms: int = 3_600_000
    adwin_delta: float = 0.002
    error_min_rise: float = 0.05  # ADWIN reports only an error this far above the training error
    ph_threshold: float = 200.0
    accuracy_fraction: float = 0.8
    accuracy_window: int = 1000  # SE ~1.5 points: 500 (2.2) dipped below the floor on unchanged real candles
    ks_window: int = 500
    ks_every: int = 250
    ks_alpha: float = 0.01
    ks_min_statistic: float = 0.3
    ks_min_fraction: float = 0.5
    trade_window: int = 100  # TRADE outcomes judged together (learning.drift.TradeLosses)
    trade_z: float = 2.33


class RetrainTrigger:
    """Drift watch for one model version; :meth:`update` returns a retrain request or None."""

    def __init__(self, model_version: str, training_accuracy: float, return_std: float,
                 reference: np.ndarray | None = None, config: TriggerConfig = TriggerConfig(),
                 horizon: int | None = None) -> None:
        self.model_version, self.training_accuracy, self.config = model_version, training_accuracy, config
        self.horizon = horizon  # None: outcomes of every horizon of the version
        self.error = ErrorDrift(config.adwin_delta, 1.0 - training_accuracy, config.error_min_rise)
        self.returns = ReturnDrift(return_std, threshold=config.ph_threshold)
        self.floor = AccuracyFloor(training_accuracy, config.accuracy_fraction, config.accuracy_window)
        self.trade_losses = TradeLosses(config.trade_window, config.trade_z)
        self.features: FeatureDrift | None = None
        if reference is not None:
            self.attach_reference(reference)
        self.latched: dict[str, dict[str, Any]] = {}
        self.seen = self.since_last = self.requests = 0
        self.last_request_ms: int | None = None
        self.last_request: dict[str, Any] | None = None
        # The last CHANGE_WINDOW outcomes (candle time, wrong?), oldest first from ``_next``: where the
        # error rate changed, i.e. since when the market looks new (``scope.since`` of a request).
        self._times = np.zeros(CHANGE_WINDOW, dtype=np.int64)
        self._wrong = np.full(CHANGE_WINDOW, -1, dtype=np.int8)  # -1: no verdict (a tie) or not filled
        self._next = 0

    def attach_reference(self, reference: np.ndarray) -> None:
        """The model's training features (models/profile.py): the KS watch runs from here on. Persisted
        state leaves the reference out, so a restored trigger is given it again."""
        if self.features is None:
            c = self.config
            self.features = FeatureDrift(reference, c.ks_window, c.ks_every, c.ks_alpha, c.ks_min_statistic,
                                         c.ks_min_fraction)
        else:
            self.features.attach(reference)

    def state(self) -> dict[str, Any]:
        """Where each watch stands, for ``/models`` and the dashboard (plain numbers)."""
        return {
            "model_version": self.model_version, "horizon": self.horizon, "training_accuracy": self.training_accuracy,
            "seen": self.seen, "since_last": self.since_last, "min_samples": self.config.min_samples,
            "requests": self.requests, "last_request_ms": self.last_request_ms,
            "latched": sorted(self.latched),
            "rolling_accuracy": self.floor.rolling_accuracy(), "accuracy_floor": self.floor.floor,
            "error_drift_width": self.error.width(), "return_drift_statistic": self.returns.statistic(),
            "trades_judged": self.trade_losses.judged, "trade_window": self.trade_losses.window,
            "feature_drift": None if self.features is None else
            ("waiting for the model's reference" if self.features.reference is None else "watching"),
        }

    def update(self, outcome: Mapping[str, Any], features: Sequence[float] | None = None,
               now_ms: int | None = None) -> dict[str, Any] | None:
        """Feed one Outcome record (and the features its prediction was made from); a request or None.
        Outcomes of other model versions are ignored, so an agent may feed it the whole topic."""
        if outcome.get("model_version") != self.model_version or (
                self.horizon is not None and outcome.get("horizon") != self.horizon):
            return None
        if now_ms is None:  # the label candle's close: when this outcome became knowable
            now_ms = int(outcome["open_time"]) + (int(outcome["horizon"]) + 1) * timeframe_ms(outcome["timeframe"])
        self.seen += 1
        self.since_last += 1
        below = None
        correct = outcome.get("direction_correct")
        if correct is not None:
            self._times[self._next], self._wrong[self._next] = int(outcome["open_time"]), 0 if correct else 1
            self._next = (self._next + 1) % CHANGE_WINDOW
            self._latch("error_drift", self.error.update(bool(correct)))
            below = self.floor.update(bool(correct))
        r = outcome.get("realized_log_return")
        if r is not None:
            self._latch("return_drift", self.returns.update(float(r)))
        if self.features is not None and features is not None:
            self._latch("feature_drift", self.features.update(features, at=now_ms))
        reasons = dict(self.latched)
        if below is not None:
            reasons["accuracy_below_training"] = below
        if not reasons or self.since_last < self.config.min_samples:
            return None
        if self.last_request_ms is not None and now_ms - self.last_request_ms < self.config.cooldown_ms:
            return None
        return self._request(reasons, below, now_ms)

    def update_trade(self, outcome: Mapping[str, Any], now_ms: int | None = None) -> dict[str, Any] | None:
        """Feed one TRADE outcome (a trading engine's result of acting on a signal); a request or None.
        Trades are few beside labels, so the label count gate (``min_samples``) does not apply: the
        detector judges a full window of trades; the cooldown does."""
        if outcome.get("model_version") != self.model_version or outcome.get("pnl") is None or (
                self.horizon is not None and outcome.get("horizon") != self.horizon):
            return None
        if now_ms is None:
            now_ms = int(outcome["open_time"]) + (int(outcome["horizon"]) + 1) * timeframe_ms(outcome["timeframe"])
        self._latch("trades_losing", self.trade_losses.update(float(outcome["pnl"])))
        if "trades_losing" not in self.latched:
            return None
        if self.last_request_ms is not None and now_ms - self.last_request_ms < self.config.cooldown_ms:
            return None
        return self._request(dict(self.latched), None, now_ms)

    def _latch(self, reason: str, evidence: dict[str, Any] | None) -> None:
        if evidence is not None:
            self.latched[reason] = evidence  # the latest evidence of each kind is the one reported

    def changed_since(self) -> int | None:
        """The candle time where the error rate of the last outcomes changed most (the maximum of the
        CUSUM of errors minus their mean: the least-squares single change point), when the later part is
        the worse one: the data that looks like the new market. None without a worse later part."""
        order = np.r_[self._next:CHANGE_WINDOW, 0:self._next]
        keep = order[self._wrong[order] >= 0]
        if len(keep) < 2 * MIN_SEGMENT:
            return None
        wrong = self._wrong[keep].astype(np.float64)
        cusum = np.cumsum(wrong - wrong.mean())[MIN_SEGMENT - 1:len(wrong) - MIN_SEGMENT]
        k = int(np.argmin(cusum)) + MIN_SEGMENT  # errors below the mean before k, above after: worse later
        if cusum[k - MIN_SEGMENT] >= 0:
            return None
        return int(self._times[keep[k]])

    def _request(self, reasons: dict[str, Any], below: dict[str, Any] | None, now_ms: int) -> dict[str, Any]:
        key = json.dumps(["retrain", self.model_version, now_ms, self.seen], separators=(",", ":"))
        since = self.changed_since()
        record = {
            "id": hashlib.sha256(key.encode()).hexdigest()[:32], "model_version": self.model_version,
            "horizon": self.horizon,
            "time": now_ms, "reasons": sorted(reasons), "evidence": reasons, "outcomes_seen": self.seen,
            "outcomes_since_last": self.since_last, "training_accuracy": self.training_accuracy,
            "config": asdict(self.config),
            # What the retrain worker trains on: the candles from where the errors rose (changed_since).
            "scope": {"since": since} if since is not None else {},
        }
        self.requests += 1
        self.last_request_ms, self.since_last, self.latched = now_ms, 0, {}
        self.last_request = {"id": record["id"], "time": now_ms, "reasons": record["reasons"]}
        for detector in (self.error, self.returns, self.floor, self.features, self.trade_losses):
            if detector is not None:
                detector.reset()
        return record

    def to_bytes(self) -> bytes:
        """Pickled (the ADWIN / Page-Hinkley objects are River's); see :func:`learning._state.dump_pickle`."""
        return dump_pickle("retrain-trigger", _FORMAT, self)

    @classmethod
    def from_bytes(cls, blob: bytes) -> RetrainTrigger:
        trigger = load_pickle("retrain-trigger", _FORMAT, blob)
        if not hasattr(trigger, "trade_losses"):  # written before trades were watched: that watch starts now
            trigger.trade_losses = TradeLosses(trigger.config.trade_window, trigger.config.trade_z)
        return trigger
