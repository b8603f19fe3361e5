"""What one partition's outcome agent learns: the online model, accuracy per version, and drift watches.

One :class:`OutcomeLearner` per partition of the outcomes topic: a symbol's outcomes, candles and
predictions all share that partition, so the worker that scores a symbol is the one whose online model
has learned from its outcomes. :meth:`update` takes an Outcome record and the features its prediction
was made from; it returns a retrain request when a drift watch fires.

Drift watches run per model version and horizon, for the versions :meth:`arm` was given (with the
training profile of each: accuracy per horizon, reference features; models/profile.py). With a
``threshold_config`` it also keeps each version's adaptive signal threshold (learning/threshold.py), fed by
the label outcomes of its signals.

>>> learner = OutcomeLearner(training_accuracy={"v1": {1: 0.6}})
>>> out = {"id": "o1", "source": "LABEL", "prediction_id": "p1", "model_version": "v1", "horizon": 1,
...        "symbol": "A", "timeframe": "5m", "open_time": 0, "realized_log_return": 0.01, "direction_correct": True}
>>> learner.update(out, [0.1] * 41) is None, learner.queued, learner.accuracy.accuracy("v1", 1)
(True, 1, 1.0)
>>> learner.advance(300_000)  # the partition's next candle time: the queued outcome is learned
>>> learner.online.n_learned, OutcomeLearner.from_bytes(learner.to_bytes()).online.n_learned
(1, 1)
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from learning.accuracy import AccuracyTracker
from learning.online import OnlineModel
from learning.retrain import RetrainTrigger, TriggerConfig
from learning.sealed import seal, unseal
from learning.threshold import AdaptiveThreshold, ThresholdConfig
from learning.trades import TradeResults
from core.errors import DecodeError

__all__ = ["OutcomeLearner", "partition_key", "trigger_key"]

log = logging.getLogger(__name__)

# Page-Hinkley needs the scale of returns; until a version has this many outcomes it is estimated, not watched.
_RETURN_SAMPLE = 200


def partition_key(partition: int) -> str:
    """The key of a partition's learner (the worker's ``learners`` table, the replay's): ``partition-N``."""
    return f"partition-{partition}"


def trigger_key(version: str, horizon: int) -> str:
    """The key of one drift watch.

    >>> trigger_key("ens-0123", 1)
    'ens-0123|h1'
    """
    return f"{version}|h{horizon}"


class OutcomeLearner:
    def __init__(self, training_accuracy: Mapping[str, Mapping[int, float]] | None = None,
                 config: TriggerConfig = TriggerConfig(), online: OnlineModel | None = None) -> None:
        # version -> {horizon: validation accuracy}: the versions whose drift is watched
        self.training_accuracy = {v: {int(h): float(a) for h, a in acc.items()} for v, acc in (training_accuracy or {}).items()}
        self.config = config
        self.online = online or OnlineModel(horizon=1)
        self.accuracy = AccuracyTracker()
        self.triggers: dict[str, RetrainTrigger] = {}  # trigger_key(version, horizon) -> its watch
        self._returns: dict[str, list[float]] = {}
        # Not persisted (the models hold them): each armed version's reference features, and which
        # versions this process has armed (after a restore, the serving worker arms them again).
        self.references: dict[str, Any] = {}
        self.armed: set[str] = set()
        self.trades = TradeResults()  # P&L and hit rate per version, from a trading engine's TRADE outcomes
        # The online model learns in mini-batches: the outcomes that arrive while the partition's candle
        # time stands still are learned together when it moves on (:meth:`advance`). What it has learned
        # at any candle therefore depends only on the partition's order of candles, not on how a worker
        # cut them into batches: live and replay agree.
        self.watermark: int | None = None  # the latest candle open time this partition has seen
        self._to_learn: list[tuple[np.ndarray, int]] = []  # (features, label); tuples in older states
        # Adaptive signal thresholds per version, fed the same way: a signal's outcome counts when the clock moves on.
        self.threshold_config: ThresholdConfig | None = None  # None: thresholds stay as configured
        self.thresholds: dict[str, AdaptiveThreshold] = {}
        self._signal_verdicts: list[tuple[str, bool | None, float]] = []  # (version, right, P&L) queued
        self.threshold_events: list[dict[str, Any]] = []  # changes not yet published (the step takes them)
        # (topic, partition) -> (offset, open time), the furthest message whose candles' outcomes this learner
        # learned (persisted), and the same as it was restored: a learner restored ahead of a series after a
        # crash must not learn that series' redelivered candles twice (:meth:`has_learned`).
        self.learned_through: dict[tuple[str, int], tuple[int, int]] = {}
        self.restored_through: dict[tuple[str, int], tuple[int, int]] = {}

    def advance(self, open_time: int) -> None:
        """A candle of ``open_time`` arrives in this partition: if time moved on, learn what is queued."""
        if self.watermark is None or open_time > self.watermark:
            self.watermark = open_time
            self.flush()
            self._judge_signals(open_time)

    def has_learned(self, position: tuple[str, int, int] | None, open_time: int) -> bool:
        """The candle read at ``position`` (topic, partition, offset) with ``open_time`` was learned before this
        learner was restored: its message is not after the furthest one learned then in its topic partition,
        nor its open time (as a series covers a candle, streams/series.py: a recreated topic's new candles are
        learned). A checkpoint writes a learner only once every candle of the messages it read is learned, so
        a message is learned whole or not at all; in a live learner the series' own positions catch redeliveries.

        >>> learner = OutcomeLearner()
        >>> learner.mark_learned(("candles.5m", 0, 7), 600_000)
        >>> learner.has_learned(("candles.5m", 0, 7), 600_000), OutcomeLearner.from_bytes(learner.to_bytes()).has_learned(
        ...     ("candles.5m", 0, 7), 600_000)
        (False, True)
        """
        mark = self.restored_through.get(position[:2]) if position is not None else None
        return mark is not None and position[2] <= mark[0] and open_time <= mark[1]

    def mark_learned(self, position: tuple[str, int, int] | None, open_time: int) -> None:
        """The outcomes labelled by the candle read at ``position`` (None: not read from a topic) are learned."""
        if position is not None:
            offset, latest = self.learned_through.get(position[:2], (-1, open_time))
            self.learned_through[position[:2]] = (max(offset, position[2]), max(latest, open_time))

    def threshold(self, version: str, default: float) -> float:
        """The signal threshold of ``version`` now (``default``, the configured one, until it has adapted)."""
        t = self.thresholds.get(version) if self.threshold_config is not None else None
        return t.value if t is not None else default

    def _judge_signals(self, at: int) -> None:
        verdicts, self._signal_verdicts = self._signal_verdicts, []
        if self.threshold_config is None:
            return
        for version, hit, pnl in verdicts:
            t = self.thresholds.get(version)
            if t is None:
                t = self.thresholds[version] = AdaptiveThreshold(self.threshold_config)
            change = t.observe(hit, pnl)
            if change is not None:
                self.threshold_events.append({"model_version": version, "at": at, **change})

    def arm(self, version: str, profile: Any) -> None:
        """Watch ``version`` with its :class:`~models.profile.TrainingProfile` (accuracy per horizon,
        reference features or None). Arming again (a restored learner, a version back from a rollback)
        gives its watches the reference again; what they have seen stays."""
        if profile.accuracy:
            self.training_accuracy[version] = dict(profile.accuracy)
        if profile.reference is not None:
            self.references[version] = profile.reference
            for trigger in self.triggers.values():
                if trigger.model_version == version:
                    trigger.attach_reference(profile.reference)
        self.armed.add(version)

    def arm_models(self, models: Sequence[Any]) -> None:
        """:meth:`arm` each model (anything with a ``version`` and a ``profile``; None is skipped) this
        process has not armed yet: the serving worker calls it per batch, so a hot reload is armed at once."""
        for model in models:
            if model is not None and model.version not in self.armed:
                profile = getattr(model, "profile", None)
                if profile is None:
                    self.armed.add(model.version)  # nothing to compare it with: never watched
                else:
                    self.arm(model.version, profile)

    def watches(self) -> list[dict[str, Any]]:
        """The state of every drift watch (:meth:`RetrainTrigger.state`), and versions still sampling returns."""
        out = [t.state() for _, t in sorted(self.triggers.items())]
        out += [{"model_version": key.rpartition("|h")[0], "horizon": int(key.rpartition("|h")[2]),
                 "sampling_returns": len(sample), "of": _RETURN_SAMPLE} for key, sample in sorted(self._returns.items())]
        return out

    def flush(self) -> None:
        """Learn the queued outcomes now, as one mini-batch (:meth:`OnlineModel.learn_many`)."""
        queued, self._to_learn = self._to_learn, []
        if queued:
            self.online.learn_many(np.vstack([x for x, _ in queued]).astype(np.float64, copy=False), [y for _, y in queued])

    @property
    def queued(self) -> int:
        return len(self._to_learn)

    def update(self, outcome: Mapping[str, Any], features: Sequence[float] | None,
               learn_online: bool = True, confidence: float | None = None) -> dict[str, Any] | None:
        """Count ``outcome`` (accuracy, trade results, drift watches: a TRADE outcome feeds its version's
        trade-loss watch); queue it for the online model unless ``learn_online`` is False (a shadow model's
        outcome of a candle the active one's also labels). Returns a retrain request or None."""
        if outcome.get("source") == "TRADE":  # a trade's verdict is its P&L, kept apart from the labels' accuracy
            self.trades.update(outcome)
            if self.threshold_config is not None and self.threshold_config.from_trades and outcome.get("pnl") is not None \
                    and outcome.get("model_version"):
                pnl = float(outcome["pnl"])  # judged when the partition's clock next moves, as label verdicts are
                self._signal_verdicts.append((outcome["model_version"], None if pnl == 0 else pnl > 0, pnl))
            trigger = self.triggers.get(trigger_key(outcome.get("model_version"), outcome.get("horizon")))
            # a version's trades are watched once its labels armed the watch (its return scale known)
            return trigger.update_trade(outcome) if trigger is not None else None
        self.accuracy.update(outcome)
        if learn_online:
            self.queue(outcome, features, confidence)
        return self._watch(outcome, features)

    def queue(self, outcome: Mapping[str, Any], features: Sequence[float] | None, confidence: float | None = None) -> None:
        """Queue a label outcome for the online model's next mini-batch (of its horizon) and, if its prediction
        was confident enough to be a signal at the configured threshold (``confidence``), for its version's
        adaptive threshold; both are applied when the clock moves on (:meth:`advance`). Judging the
        configured threshold's signals, not only those a raised threshold lets through, lets a recovery
        show as fast as a decline did."""
        r = outcome.get("realized_log_return")
        if self.threshold_config is not None and not self.threshold_config.from_trades and confidence is not None \
                and confidence >= self.threshold_config.base and outcome.get("source") == "LABEL" and r is not None \
                and math.isfinite(r):
            right = outcome.get("direction_correct")
            # P&L in log return, in the signal's direction (a right call earns |r|, a wrong one loses it)
            pnl = 0.0 if right is None else (abs(r) if right else -abs(r))
            self._signal_verdicts.append((outcome["model_version"], right, pnl))
        if features is not None and r is not None and r != 0.0 and outcome.get("horizon") == self.online.horizon \
                and outcome.get("source") != "TRADE":
            # float64, None as NaN (a labeller's row is taken as it is: the labeller keeps its own copy)
            self._to_learn.append((np.asarray(features, dtype=np.float64), int(r > 0.0)))

    def _watch(self, outcome: Mapping[str, Any], features: Sequence[float] | None) -> dict[str, Any] | None:
        version, horizon = outcome.get("model_version"), outcome.get("horizon")
        accuracy = self.training_accuracy.get(version, {}).get(horizon)
        if accuracy is None:
            return None  # no training accuracy to compare with (e.g. the online model's own versions)
        key = trigger_key(version, horizon)
        trigger = self.triggers.get(key)
        if trigger is None:
            sample = self._returns.setdefault(key, [])
            r = outcome.get("realized_log_return")
            if r is not None and math.isfinite(r):
                sample.append(float(r))
            if len(sample) < _RETURN_SAMPLE:
                return None
            mean = sum(sample) / len(sample)
            std = math.sqrt(sum((x - mean) ** 2 for x in sample) / (len(sample) - 1)) or 1e-6
            trigger = self.triggers[key] = RetrainTrigger(version, accuracy, std, self.references.get(version),
                                                          self.config, horizon)
            del self._returns[key]
        return trigger.update(outcome, features)

    def predict_proba_one(self, features: Sequence[float]) -> float:
        return self.online.predict_proba_one(features)

    def to_bytes(self, key: bytes | None = None) -> bytes:
        """The learner's state; with ``key``, sealed (learning/sealed.py): what a worker writes to its table.
        Pickled inside, as the River objects persist only that way: :meth:`from_bytes` with the key checks
        the seal before unpickling anything."""
        blob = pickle.dumps({"training_accuracy": self.training_accuracy, "config": self.config,
                             "online": self.online.to_bytes(), "accuracy": self.accuracy.to_bytes(),
                             "triggers": {v: t.to_bytes() for v, t in self.triggers.items()},
                             "returns": self._returns, "trades": self.trades.to_bytes(),
                             "watermark": self.watermark, "to_learn": self._to_learn,
                             "threshold_config": self.threshold_config,
                             "thresholds": {v: t.to_dict() for v, t in self.thresholds.items()},
                             "signal_verdicts": self._signal_verdicts, "learned_through": self.learned_through}, protocol=5)
        return seal(blob, key) if key is not None else blob

    @classmethod
    def from_bytes(cls, blob: bytes, key: bytes | None = None) -> "OutcomeLearner":
        """Inverse of :meth:`to_bytes`; with ``key`` a value that is not sealed under it is refused
        (DecodeError) before it is unpickled."""
        state = pickle.loads(unseal(blob, key) if key is not None else blob)
        # Before per-horizon watches: {version: accuracy} and triggers keyed by version, all horizon 1 live.
        accuracy = {v: a if isinstance(a, dict) else {1: a} for v, a in state["training_accuracy"].items()}
        learner = cls(accuracy, state["config"], OnlineModel.from_bytes(state["online"]))
        learner.accuracy = AccuracyTracker.from_bytes(state["accuracy"])
        for key, b in state["triggers"].items():
            try:
                learner.triggers[key] = RetrainTrigger.from_bytes(b)
            except DecodeError as exc:  # an older format: that watch starts over
                log.warning("drift watch %s not restored (%s); it starts over", key, exc)
        learner._returns = {k if "|h" in k else trigger_key(k, 1): v for k, v in state["returns"].items()}
        if "trades" in state:  # before: only a count
            learner.trades = TradeResults.from_bytes(state["trades"])
        learner.watermark, learner._to_learn = state.get("watermark"), state.get("to_learn", [])
        learner.threshold_config = state.get("threshold_config")
        learner.thresholds = {v: AdaptiveThreshold.from_dict(t) for v, t in state.get("thresholds", {}).items()}
        learner._signal_verdicts = state.get("signal_verdicts", [])
        learner.learned_through = state.get("learned_through", {})
        learner.restored_through = dict(learner.learned_through)
        return learner

    def configure_thresholds(self, config: ThresholdConfig | None) -> None:
        """Today's settings for the adaptive thresholds (None: off); kept values are clipped to the new bounds."""
        if config != self.threshold_config:
            self.threshold_config = config
            if config is not None:
                self.thresholds = {v: AdaptiveThreshold.from_dict(t.to_dict(), config) for v, t in self.thresholds.items()}
