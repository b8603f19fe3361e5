"""The online model: a River pipeline that learns from every labelled outcome and predicts on every candle.

Chosen by measurement on the real candles (docs/learning.md): ``StandardScaler | LogisticRegression``.
It matched or beat an adaptive random forest (``forest.ARFClassifier``) on test-then-train accuracy
and costs ~50 µs per sample against milliseconds, which matters at one learn + one predict per candle.
``kind="arf"`` stays available for re-measuring.

Missing features (NaN during warm-up, inputs the feed lacks) are **left out** of the River dict rather than
filled: ``StandardScaler`` then ``LogisticRegression`` treat an absent key as contributing 0 after
scaling, i.e. mean imputation, and the scaler's statistics are not dragged by fake zeros.

State: :meth:`OnlineModel.to_bytes` is a small JSON header (kind, version, counter, River version) plus a
**pickle** of the River pipeline, which is how River itself persists models. Pickle executes code on load,
so the blob must only come from our own changelog topic, never from user input; and a blob written by
another River version is refused (``DecodeError``) so a worker starts cold instead of misreading weights.

>>> m = OnlineModel(horizon=1)
>>> m.predict_proba_one([0.0] * 41)
0.5
>>> for i in range(200):
...     x = [float("nan")] * 41; x[11] = (-1.0) ** i      # only log_return_1 is known
...     m.learn_one(x, int(i % 2 == 0))
>>> up = [float("nan")] * 41; up[11] = 1.0
>>> m.predict_proba_one(up) > 0.5, m.n_learned, m.version.startswith("river-logreg-h1-")
(True, 200, True)
>>> restored = OnlineModel.from_bytes(m.to_bytes())
>>> restored.predict_proba_one(up) == m.predict_proba_one(up), restored.n_learned
(True, 200)

As an ensemble member (streams/online_member.py) its weight follows its **recent accuracy**: every outcome is
first predicted, then learned (test-then-train), and the last ``RECENT`` verdicts decide
(:meth:`OnlineModel.member_weight`): 0 until it has learned ``MIN_LEARNED`` outcomes and judged
``MIN_JUDGED``, then rising from 0 at coin-flip accuracy to ``max_weight`` at the batch model's own
validation accuracy.

>>> round(m.recent_accuracy, 3), len(m.recent), m.member_weight(max_weight=0.5, reference_accuracy=0.6)
(0.995, 199, 0.5)
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
import math
import pickle
import struct
from collections.abc import Mapping, Sequence
from itertools import compress
from typing import Any

import numpy as np
import river
from scipy.special import expit
from river import compose, forest, linear_model, optim, preprocessing

from core.errors import DecodeError
from features import FEATURE_NAMES

__all__ = ["KINDS", "MIN_JUDGED", "MIN_LEARNED", "OnlineModel", "RECENT"]

KINDS = ("logreg", "arf")
LEARN_MANY_MIN = 32  # rows from which one mini-batch step is cheaper than as many learn_one calls
MIN_LEARNED = 200  # an online model with fewer outcomes behind it has no say in a prediction
RECENT = 500  # test-then-train verdicts its member weight follows
MIN_JUDGED = 100  # verdicts needed before it gets a weight
_MAGIC = b"CFOM"
_LEN = struct.Struct("<I")


def _pipeline(kind: str, seed: int, learning_rate: float) -> compose.Pipeline:
    if kind == "logreg":
        return preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate))
    if kind == "arf":
        return preprocessing.StandardScaler() | forest.ARFClassifier(n_models=10, seed=seed)
    raise ValueError(f"unknown online model kind {kind!r} (known: {', '.join(KINDS)})")


class OnlineModel:
    """P(close rises over ``horizon`` candles) from one feature vector, learned one outcome at a time."""

    def __init__(self, kind: str = "logreg", horizon: int = 1, feature_names: Sequence[str] = FEATURE_NAMES,
                 seed: int = 42, learning_rate: float = 0.01) -> None:
        self.kind, self.horizon, self.seed, self.learning_rate = kind, horizon, seed, learning_rate
        self.feature_names = tuple(feature_names)
        self.pipeline = _pipeline(kind, seed, learning_rate)
        self.n_learned = 0
        self.recent: deque[int] = deque(maxlen=RECENT)  # 1 where the outcome was predicted right before learning it
        # predict_many's scaler and weight arrays, as of ``n_learned`` (every learning path moves it): read out
        # of River's dicts once per learning step, not per call (a close is predicted, then judged, unchanged)
        self._arrays: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        # The version names the configuration, not the weights: outcomes of one version stay comparable
        # while it keeps learning, and a different setup can never be mistaken for it.
        config = json.dumps([kind, horizon, self.feature_names, seed, learning_rate, river.__version__])
        self.version = f"river-{kind}-h{horizon}-{hashlib.sha256(config.encode()).hexdigest()[:12]}"

    def _x(self, features: Sequence[float] | Mapping[str, float]) -> dict[str, float]:
        if isinstance(features, Mapping):
            return {k: float(v) for k, v in features.items() if v is not None and math.isfinite(v)}
        values = np.asarray(features, dtype=np.float64)  # None -> NaN: left out like any missing value
        if values.shape != (len(self.feature_names),):
            raise ValueError(f"expected {len(self.feature_names)} features, got shape {values.shape}")
        known = np.isfinite(values)  # one vectorised test instead of one per feature (~5x cheaper)
        return dict(zip(compress(self.feature_names, known.tolist()), values[known].tolist()))

    def learn_one(self, features: Sequence[float] | Mapping[str, float], label: int | bool) -> None:
        """Learn one outcome: ``label`` 1/True when the close rose over the horizon (judged first, see ``recent``)."""
        x = self._x(features)
        self._judge([self._proba(x)], [label])
        self._learn_x(x, label)

    def _learn_x(self, x: dict[str, float], label: int | bool) -> None:
        self.pipeline.learn_one(x, bool(label))
        self.n_learned += 1

    def _judge(self, p_up: Sequence[float], labels: Sequence[int | bool]) -> None:
        if self.n_learned:  # an untrained model's 0.5 is no verdict
            self.recent.extend(int((p >= 0.5) == bool(y)) for p, y in zip(p_up, labels))

    @property
    def recent_accuracy(self) -> float | None:
        """Share of the last ``RECENT`` outcomes it predicted right just before learning them (None: none yet)."""
        return sum(self.recent) / len(self.recent) if self.recent else None

    def member_weight(self, max_weight: float, reference_accuracy: float | None) -> float:
        """Its weight in the main horizon: 0 until ``MIN_LEARNED`` learned and ``MIN_JUDGED`` judged; then
        ``max_weight`` x (recent accuracy - 0.5) / (``reference_accuracy`` - 0.5), within 0..``max_weight``.
        ``reference_accuracy`` is the batch model's validation accuracy (0.55 when unknown): an online model
        as good as the batch model was in training gets the full weight, a coin flip none."""
        if max_weight <= 0 or self.n_learned < MIN_LEARNED or len(self.recent) < MIN_JUDGED:
            return 0.0
        reference = max(reference_accuracy if reference_accuracy is not None else 0.55, 0.51)
        share = (self.recent_accuracy - 0.5) / (reference - 0.5)
        return max_weight * min(max(share, 0.0), 1.0)

    def learn_many(self, rows: np.ndarray, labels: Sequence[int | bool]) -> None:
        """Learn a mini-batch (``rows``: n x features, NaN where a value is missing): one close's outcomes.

        The scaler's statistics are merged with the batch's exactly (per feature, over the values
        present, the same mean and variance ``learn_one`` would reach up to rounding); scaled missing
        values are 0, as ``learn_one`` leaves a missing feature out. The logistic regression then moves
        as far as ``n`` ``learn_one`` steps would, in as few full-batch gradient steps as stay stable
        (:meth:`_descend`). A batch of fewer than ``LEARN_MANY_MIN`` rows is learned one row at a time
        (``learn_one``, ~35 us each): which way depends only on the batch, so the result does too.
        """
        rows = np.asarray(rows, dtype=np.float64)
        if len(rows) == 0:
            return
        if rows.ndim != 2 or rows.shape[1] != len(self.feature_names):
            raise ValueError(f"learn_many takes rows of {len(self.feature_names)} features, got shape {rows.shape}")
        self._judge(self.predict_many(rows).tolist(), labels)
        if self.kind != "logreg" or len(rows) < LEARN_MANY_MIN:  # the forest learns one sample at a time
            for row, label in zip(rows, labels):
                self._learn_x(self._x(row.tolist()), label)
            return
        scaler, regression = self.pipeline.steps.values()
        known = np.isfinite(rows)
        counts = known.sum(axis=0)
        present = np.flatnonzero(counts)
        names = [self.feature_names[j] for j in present]
        # The batch's mean and variance per feature over the values present, all columns at once (a
        # missing value adds a 0 to the sums and nothing to the count); a loop of numpy calls per
        # feature was ~40 % of a call.
        counts = counts[present]
        values = np.where(known[:, present], rows[:, present], 0.0)
        batch_means = values.sum(axis=0) / counts
        deviations = np.where(known[:, present], values - batch_means, 0.0)
        batch_vars = (deviations * deviations).sum(axis=0) / counts
        means, stds = np.empty(len(present)), np.empty(len(present))
        for k, (name, n_new, batch_mean, batch_var) in enumerate(zip(names, counts.tolist(), batch_means.tolist(),
                                                                      batch_vars.tolist())):
            n_old = scaler.counts[name]
            a, b = n_old / (n_old + n_new), n_new / (n_old + n_new)
            mean_old = scaler.means[name]
            scaler.vars[name] = a * scaler.vars[name] + b * batch_var + a * b * (mean_old - batch_mean) ** 2
            scaler.means[name] = a * mean_old + b * batch_mean
            scaler.counts[name] = n_old + n_new
            means[k], stds[k] = scaler.means[name], scaler.vars[name] ** 0.5
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.where(stds > 0, (rows[:, present] - means) / np.where(stds > 0, stds, 1.0), 0.0)
        scaled[~known[:, present]] = 0.0
        self._descend(regression, scaled, names, labels)
        self.n_learned += len(rows)

    @staticmethod
    def _descend(regression: Any, scaled: np.ndarray, names: Sequence[str], labels: Sequence[int | bool]) -> int:
        """Gradient descent of the logistic regression on one scaled batch (n rows, the ``names`` columns):
        as far as ``n`` ``learn_one`` steps at its learning rates would go, cut into the fewest full-batch
        steps that each stay stable; River's weights, intercept and step count are updated in place.
        Returns the number of steps.

        One step of the summed gradient (River's ``learn_many(..., w=n)``) is ``n`` times a single step:
        past ``2 / (rate x curvature)`` rows it overshoots and the weights swing further every close (on
        the real candles in batches of 500, a close of 500 symbols: held-out accuracy 0.45 against 0.62
        one row at a time; 2,000 rows a batch overflowed ``exp``). The mean log loss curves at most
        ``(mean |x|^2 + 1) / 4`` (the intercept's column counted), so steps of at most ``1 / (rate x
        curvature)`` rows each decrease it (~10 rows with 41 standardised features at rate 0.01: ~50 steps
        for 500 rows, ~2 us a row); the same total moves the weights as the ``n`` single steps would, and
        the accuracy is that of ``learn_one`` (0.61-0.62 for batches of 100-2,000 rows).
        """
        n = len(scaled)
        optimizer = regression.optimizer
        rate, intercept_rate = optimizer.learning_rate, regression.intercept_lr.get(optimizer.n_iterations)
        weights = np.array([regression._weights.get(name, 0.0) for name in names])
        intercept = float(regression.intercept)
        sign = np.where(np.asarray(labels, dtype=bool), 1.0, -1.0)  # River's log loss takes labels as -1/1
        curvature = (float(np.einsum("ij,ij->", scaled, scaled)) / n + 1.0) / 4.0
        # No more steps than rows: an outlier far out in scaled units is taken as learn_one would take it
        steps = min(n, math.ceil(n * max(rate, intercept_rate) * curvature))
        for _ in range(steps):
            gradient = -sign * expit(-sign * (scaled @ weights + intercept))  # d loss / d logit per row
            weights -= rate * (scaled.T @ gradient) / steps
            intercept -= intercept_rate * float(gradient.sum()) / steps
        for name, value in zip(names, weights.tolist()):
            regression._weights[name] = value
        regression.intercept = intercept
        optimizer.n_iterations += steps
        return steps

    def predict_proba_one(self, features: Sequence[float] | Mapping[str, float]) -> float:
        """P(up) for one feature vector (a sequence in ``feature_names`` order or a name -> value mapping)."""
        return self._proba(self._x(features))

    def _proba(self, x: dict[str, float]) -> float:
        if self.n_learned == 0:
            return 0.5  # an untrained model has no opinion; River would answer {} here
        proba = self.pipeline.predict_proba_one(x)
        total = sum(proba.values())
        return float(proba.get(True, 0.0) / total) if total > 0 else 0.5

    def predict_many(self, rows: np.ndarray) -> np.ndarray:
        """P(up) for each row (n x features, NaN where missing): what :meth:`predict_proba_one` gives per row
        (to ~1e-15), computed with numpy for the logistic regression. Each row's sum runs on its own, so
        a row's value does not depend on the other rows of the call (replays cut batches differently)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self.feature_names):
            raise ValueError(f"predict_many takes rows of {len(self.feature_names)} features, got shape {rows.shape}")
        if self.n_learned == 0:
            return np.full(len(rows), 0.5)
        if self.kind != "logreg":
            return np.array([self.predict_proba_one(row.tolist()) for row in rows], dtype=np.float64)
        scaler, regression = self.pipeline.steps.values()
        if self._arrays is None or self._arrays[0] != self.n_learned:
            names = self.feature_names
            self._arrays = (self.n_learned, np.array([scaler.means.get(n, 0.0) for n in names]),
                            np.sqrt(np.array([scaler.vars.get(n, 0.0) for n in names])),
                            np.array([regression._weights.get(n, 0.0) for n in names]))  # River's VectorDict
        _, means, stds, weights = self._arrays
        known = np.isfinite(rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.where(known & (stds > 0), (rows - means) / np.where(stds > 0, stds, 1.0), 0.0)
        logit = (scaled * weights).sum(axis=1) + regression.intercept
        # River's sigmoid, clamped as it is (utils.math.sigmoid)
        return np.where(logit < -30, 0.0, np.where(logit > 30, 1.0, 1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))))

    def predict_one(self, features: Sequence[float] | Mapping[str, float]) -> int:
        """1 (up) when P(up) >= 0.5, the tie rule of ``core.signals.decide``."""
        return int(self.predict_proba_one(features) >= 0.5)

    def to_bytes(self) -> bytes:
        """``CFOM`` + header length + JSON header + pickle of the River pipeline (see the module docstring)."""
        header = json.dumps({"kind": self.kind, "horizon": self.horizon, "features": self.feature_names,
                             "seed": self.seed, "learning_rate": self.learning_rate, "version": self.version,
                             "n_learned": self.n_learned, "river": river.__version__,
                             "recent": "".join(map(str, self.recent))}).encode()
        return b"".join((_MAGIC, _LEN.pack(len(header)), header, pickle.dumps(self.pipeline, protocol=5)))

    @classmethod
    def from_bytes(cls, blob: bytes) -> OnlineModel:
        if blob[:4] != _MAGIC or len(blob) < 8:
            raise DecodeError("online model state: bad magic")
        (n,) = _LEN.unpack_from(blob, 4)
        try:
            h = json.loads(blob[8:8 + n])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError(f"online model state: bad header ({exc})") from None
        if h.get("river") != river.__version__:
            raise DecodeError(f"online model state: written by River {h.get('river')}, running {river.__version__}")
        model = cls(h["kind"], h["horizon"], h["features"], h["seed"], h["learning_rate"])
        if model.version != h["version"]:
            raise DecodeError(f"online model state: version {h['version']} does not match its configuration")
        model.pipeline = pickle.loads(blob[8 + n:])
        model.n_learned = h["n_learned"]
        model.recent.extend(int(c) for c in h.get("recent", "") if c in "01")  # absent before the member weight
        return model
