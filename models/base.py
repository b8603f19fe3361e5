"""The model contract: what the stream scores with, whatever the model is.

Every model a worker serves is a :class:`ServableModel`: its ``version`` (the ids of its predictions carry
it), its main ``horizon`` (the one signals are decided on) and every horizon it predicts, whether a member
reads windows of feature vectors, what it was trained on (``profile``: training metrics and the feature
reference, :mod:`models.profile`), its members, and one call, ``score(features, windows, given)``, that
gives every horizon of a batch with a confidence (:func:`core.signals.confidence_of`, weighted by the
members' agreement): a :class:`ScoreOutput`. The scorer (:mod:`streams.scoring`) knows nothing else.

- :class:`models.bundle.ModelBundle`: a trained bundle (LightGBM per horizon, optionally Mamba), an
  ensemble of members.
- :class:`SingleHorizonModel`: a model of one horizon with ``predict_proba(rows) -> (n,)``
  (:class:`models.direction.DirectionModel`), served as the one-member ensemble it is.

>>> import numpy as np
>>> class Bullish(SingleHorizonModel):   # a version, a horizon and P(up): the rest comes with the base
...     version, horizon = "v1", 1
...     def predict_proba(self, rows): return np.full(len(rows), 0.8)
>>> model = Bullish()
>>> isinstance(model, ServableModel), model.horizons, model.reads_windows, model.step_members
(True, (1,), False, ())
>>> out = model.score(np.zeros((2, 41)))
>>> out.version, out.horizons, out.prob_up.tolist(), out.confidence.tolist(), out.versions
('v1', (1,), [[0.8], [0.8]], [[0.6], [0.6]], {'model': 'v1'})
>>> from models.ensemble import Ensemble
>>> alone = Ensemble(model.members).score(np.zeros((2, 41)))   # what it gives as a one-member ensemble
>>> bool((alone.prob_up == out.prob_up).all() and (alone.confidence == out.confidence).all())
True
>>> ServableModel()   # doctest: +ELLIPSIS
Traceback (most recent call last):
...
TypeError: Can't instantiate abstract class ServableModel...
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.signals import confidence_of
from models.ensemble import FEATURES, STEPS, WINDOWS, EnsembleOutput, Member
from models.profile import TrainingProfile

__all__ = ["ScoreOutput", "ServableModel", "SingleHorizonModel"]


@dataclass(frozen=True)
class ScoreOutput(EnsembleOutput):
    """An :class:`~models.ensemble.EnsembleOutput` plus the version of the model that produced it."""

    version: str = ""


class ServableModel(abc.ABC):
    """What every model a worker serves is (see the module's docstring)."""

    name: str = "model"  # the key of its output in a prediction's ``model_versions`` (a one-member model's)
    # Training accuracy per horizon and the reference features; empty: nothing to compare live outcomes with.
    profile: TrainingProfile = TrainingProfile()
    # Its distilled student (``<model dir>/student/``, attached by models.loading.load_model): what serves a
    # batch this model would score over the latency budget (streams/serving_chain.py). None: it has none.
    student: ServableModel | None = None
    # A student's distillation report (``distill.json``: teacher, accuracy kept, costs per row); else None.
    distillation: Mapping[str, Any] | None = None

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """Derived from what produces a prediction: the same models combined the same way, the same version."""

    @property
    @abc.abstractmethod
    def horizon(self) -> int:
        """The main horizon: the one a prediction's ``prob_up`` and signals are about."""

    @property
    @abc.abstractmethod
    def horizons(self) -> tuple[int, ...]:
        """Every horizon :meth:`score` gives, in its columns' order."""

    @property
    @abc.abstractmethod
    def members(self) -> tuple[Member, ...]:
        """The models combined (:class:`~models.ensemble.Member`: what each reads, its horizons, its weight)."""

    @property
    def step_members(self) -> tuple[Member, ...]:
        """The members that keep a recurrent state per series (a sequence model in step mode)."""
        return tuple(m for m in self.members if m.reads == STEPS)

    @property
    def reads_windows(self) -> bool:
        """True if a member reads windows of feature vectors (a sequence model run over windows)."""
        return any(m.reads == WINDOWS for m in self.members)

    def stats(self) -> dict[str, Any] | None:
        """Inference latency per member and for the whole score (``/models``, ``/metrics``); None when this
        model keeps none (a bundle does: :meth:`models.bundle.ModelBundle.stats`)."""
        return None

    @abc.abstractmethod
    def score(self, features: np.ndarray, windows: np.ndarray | None = None,
              given: Mapping[str, tuple[np.ndarray, float]] | None = None) -> ScoreOutput:
        """Every horizon for a batch of feature rows (n, n_features) and, if a member reads them, their
        windows (n, WINDOW, n_features). ``given``: member name -> (its P(up) for these rows, the seconds it
        took), computed by the caller (the batch step runs a step member candle by candle)."""


class SingleHorizonModel(ServableModel):
    """A model of one horizon, ``predict_proba(rows) -> (n,)``, served as a one-member ensemble: its P(up),
    confidence ``|2p - 1|`` (agreement 1), its own version; no windows, no recurrent state."""

    reads_windows = False
    step_members: tuple[Member, ...] = ()

    @property
    def horizons(self) -> tuple[int, ...]:
        return (self.horizon,)

    @property
    def members(self) -> tuple[Member, ...]:
        return (Member(self.name, self, FEATURES, (self.horizon,)),)

    @abc.abstractmethod
    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """P(up) at :attr:`horizon` for each feature row, (n,)."""

    def score(self, features: np.ndarray, windows: np.ndarray | None = None,
              given: Mapping[str, tuple[np.ndarray, float]] | None = None) -> ScoreOutput:
        # What Ensemble([Member(name, self)]).combine gives for finite P(up) (the module's example), without
        # its stacking per batch: p / 1, agreement 1, the one confidence formula.
        p = given[self.name][0] if given and self.name in given else self.predict_proba(features)
        p = np.asarray(p, dtype=np.float64).reshape(-1, 1)
        return ScoreOutput((self.horizon,), p, confidence_of(p), np.ones_like(p), "weighted_average",
                           {self.name: self.version}, (), member_prob_up={self.name: p}, version=self.version)
