"""The ensemble: members that each give P(up) for some horizons, combined per horizon by one strategy.

A member wraps any model with ``version`` and a batch ``predict_proba``: the LightGBM horizon set
(feature rows -> (n, 5)), a sequence model (windows (n, 60, 41) -> (n, 5)), an online model
(feature rows -> (n,), horizon 1 only). :class:`Member` says what it reads and which horizon each
output column is; a member that lacks the input for a batch (no windows) or gives NaN for a row is
left out there, and the output says which members were used and which were missing.

Strategies, per row and horizon, over the members with a probability there (weights ``w``, a member
votes up when ``p >= 0.5``, the tie rule of :func:`core.signals.decide`); ``agreement`` is the
weighted share of members voting for the ensemble's direction:

- ``weighted_average``: ``p = sum(w p) / sum(w)``; confidence ``|2p - 1| * agreement``.
- ``majority``: the side with more than half of the weight wins; ``p`` is the weighted mean of the
  winners' probabilities (so it lies on the winning side), confidence ``|2p - 1| * agreement``.
  An exact tie gives ``p = 0.5`` and confidence 0.
- ``unanimous``: only when every member agrees: ``p`` the weighted mean, confidence ``|2p - 1|``;
  otherwise ``p = 0.5``, confidence 0.

With one member every strategy gives its ``p`` and ``|2p - 1|``, i.e. exactly what the member alone
would decide. ``direction`` is ``UP`` when ``p >= 0.5``, so ``p`` alone reproduces it downstream.

>>> import numpy as np
>>> class Fixed:  # stands for any model: P(up) per horizon, the same for every row
...     def __init__(self, version, p): self.version, self.p = version, np.asarray(p, dtype=float)
...     def predict_proba(self, x): return np.tile(self.p, (len(x), 1)) if self.p.size > 1 else np.full(len(x), self.p[0])
>>> members = [Member("lgbm", Fixed("l1", [0.8, 0.6]), horizons=(1, 2)),
...            Member("seq", Fixed("s1", [0.7, 0.3]), reads="windows", horizons=(1, 2)),
...            Member("river", Fixed("r1", [0.4]), horizons=(1,))]   # horizon 1 only, (n,) output
>>> out = Ensemble(members, strategy="weighted_average").score(np.zeros((1, 41)), np.zeros((1, 60, 41)))
>>> out.horizons, out.prob_up.round(4).tolist(), out.agreement.round(4).tolist(), out.direction.tolist()
((1, 2), [[0.6333, 0.45]], [[0.6667, 0.5]], [['UP', 'DOWN']])
>>> out.confidence.round(4).tolist(), out.versions
([[0.1778, 0.05]], {'lgbm': 'l1', 'seq': 's1', 'river': 'r1'})
>>> Ensemble(members, strategy="majority").score(np.zeros((1, 41)), np.zeros((1, 60, 41))).prob_up.tolist()
[[0.75, 0.5]]
>>> without_windows = Ensemble(members, strategy="unanimous").score(np.zeros((1, 41)))
>>> without_windows.prob_up.tolist(), without_windows.missing
([[0.5, 0.6]], ('seq',))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from models.metadata import STRATEGIES
from core.signals import confidence_of
from core.errors import ConfigError

__all__ = ["FEATURES", "STEPS", "STRATEGIES", "WINDOWS", "Ensemble", "EnsembleOutput", "Member", "ProbaModel", "join"]

log = logging.getLogger(__name__)

# What a member reads: rows (n, 41), windows (n, 60, 41), or rows plus each series' recurrent state (a
# sequence model in step mode, models/mamba/stepper.py: ``step(rows, states) -> (p, new states)``, and
# ``scan`` for several candles of each series at once).
FEATURES, WINDOWS, STEPS = "features", "windows", "steps"


@runtime_checkable
class ProbaModel(Protocol):
    """Anything the ensemble can hold: a version and P(up) for a batch, (n,) or (n, n_horizons)."""

    version: str

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Member:
    """One model in the ensemble: its name, what it reads, the horizon of each output column, its weight.

    ``horizons`` defaults to ``model.horizons``, else ``(model.horizon,)``, else ``(1,)``.
    """

    name: str
    model: ProbaModel
    reads: str = FEATURES
    horizons: tuple[int, ...] | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.reads not in (FEATURES, WINDOWS, STEPS):
            raise ConfigError(f"member {self.name}: reads must be {FEATURES!r}, {WINDOWS!r} or {STEPS!r}, got {self.reads!r}")
        if not (self.weight >= 0 and np.isfinite(self.weight)):
            raise ConfigError(f"member {self.name}: weight must be a non-negative number, got {self.weight!r}")
        horizons = self.horizons
        if horizons is None:
            horizons = getattr(self.model, "horizons", None) or (getattr(self.model, "horizon", 1),)
        object.__setattr__(self, "horizons", tuple(int(h) for h in horizons))

    version = property(lambda self: self.model.version)

    def predict_proba(self, features: np.ndarray | None, windows: np.ndarray | None) -> np.ndarray | None:
        """(n, len(horizons)) P(up), or None when the batch lacks what this member reads."""
        return self.run(features, windows, None)[0]

    def run(self, features: np.ndarray | None, windows: np.ndarray | None,
            states: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(P(up) (n, len(horizons)) or None when the batch lacks what this member reads, the new
        states of a step member or None). A step member given ``states`` takes one step per row; given
        windows instead, it steps through each window from the zero state (what the window forward gives)."""
        new_states = None
        if self.reads == STEPS and states is not None and features is not None:
            p, new_states = self.model.step(features, states)
            n = len(features)
        elif self.reads == STEPS:
            if windows is None:
                return None, None
            n = len(windows)
            p = self.model.scan(windows, self.model.initial_state(n))[0][:, -1] if windows.shape[1] \
                else np.full((n, len(self.horizons)), 0.5)
        else:
            x = features if self.reads == FEATURES else windows
            if x is None:
                return None, None
            p, n = self.model.predict_proba(x), len(x)
        p = np.asarray(p, dtype=np.float64)
        return self._checked(p.reshape(-1, 1) if p.ndim == 1 else p, (n,)), new_states

    def scan(self, rows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A step member through ``T`` candles of each of ``n`` series (rows (n, T, features), oldest first,
        from ``states``): (P(up) after each candle (n, T, len(horizons)), the states after the last)."""
        if self.reads != STEPS:
            raise ValueError(f"member {self.name} reads {self.reads}: it has no steps to scan")
        p, new_states = self.model.scan(rows, states)
        return self._checked(np.asarray(p, dtype=np.float64), rows.shape[:2]), new_states

    def _checked(self, p: np.ndarray, rows_shape: tuple[int, ...]) -> np.ndarray:
        """``p`` (float64) when it holds one column per horizon for each row; a model that returns another
        shape is broken, and a clear error beats a prediction read from the wrong column."""
        expected = (*rows_shape, len(self.horizons))
        if p.shape != expected:
            raise ValueError(f"member {self.name} returned shape {p.shape}, expected {expected}")
        return p


@dataclass(frozen=True)
class EnsembleOutput:
    """Per row and horizon (columns in ``horizons`` order): P(up), direction, confidence, agreement;
    and for the whole batch the versions of the members used and the names of those missing."""

    horizons: tuple[int, ...]
    prob_up: np.ndarray
    confidence: np.ndarray
    agreement: np.ndarray
    strategy: str
    versions: dict[str, str]
    missing: tuple[str, ...]
    # member name -> the new recurrent states (n, state size) of a step member given states
    states: dict[str, np.ndarray] = field(default_factory=dict)
    # member name -> its P(up) per row and output column (NaN where it has none): what a member that
    # joins later (:func:`join`) is combined with
    member_prob_up: dict[str, np.ndarray] = field(default_factory=dict)

    up = property(lambda self: self.prob_up >= 0.5)
    direction = property(lambda self: np.where(self.up, "UP", "DOWN"))

    def __len__(self) -> int:
        return len(self.prob_up)

    def column(self, horizon: int) -> int:
        return self.horizons.index(horizon)


def _combine(strategy: str, P: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, agreement, confidence) from P (members, n, H) and W (same shape, 0 where no probability)."""
    total = W.sum(axis=0)
    some = total > 0
    safe_total = np.where(some, total, 1.0)
    P0 = np.where(W > 0, P, 0.0)  # NaN where a member has nothing must not leak into the sums
    votes_up = P0 >= 0.5
    up_share = (W * votes_up).sum(axis=0) / safe_total
    mean = (W * P0).sum(axis=0) / safe_total
    if strategy == "weighted_average":
        p = mean
    elif strategy == "majority":
        up = up_share > 0.5
        winners = W * (votes_up == up)
        p = (winners * P0).sum(axis=0) / np.where(winners.sum(axis=0) > 0, winners.sum(axis=0), 1.0)
        p = np.where(np.isclose(up_share, 0.5, rtol=0, atol=1e-12), 0.5, p)
    else:  # unanimous
        p = np.where((up_share <= 1e-12) | (up_share >= 1 - 1e-12), mean, 0.5)
    p = np.where(some, p, 0.5)  # nobody had a probability: no opinion
    agreement = np.where(some, np.where(p >= 0.5, up_share, 1.0 - up_share), 0.0)
    confidence = confidence_of(p) * (1.0 if strategy == "unanimous" else agreement)
    return p, agreement, confidence


def join(output: EnsembleOutput, rows: np.ndarray, column: int, weights: Mapping[str, float], p: np.ndarray,
         share: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A member that joins after the ensemble scored (the online model: it learns while the stream runs, so
    its P(up) for a row is known only then): for ``rows`` of ``output`` at ``column``, its P(up) ``p`` combined
    with the members' (``output.member_prob_up``, ``weights`` by name) by the ensemble's strategy, the joining
    member holding ``share`` (0..1, per row) of the weight. -> (P(up), agreement, confidence) per row.

    With weighted averaging P(up) is ``(1 - share) * P(ensemble) + share * p``; the confidence is the one
    formula, ``|2p - 1|`` times the weighted share of the members (the joining one among them) that agree.

    >>> class Trees:  # P(up) 0.8 for every row
    ...     version = "t1"
    ...     def predict_proba(self, x): return np.full(len(x), 0.8)
    >>> out = Ensemble([Member("trees", Trees())]).score(np.zeros((2, 3)))
    >>> p, agreement, confidence = join(out, np.array([0, 1]), 0, {"trees": 1.0}, np.array([0.4, 0.9]), np.array([0.5, 0.25]))
    >>> p.round(4).tolist(), agreement.tolist(), confidence.round(4).tolist()   # disagreeing, then agreeing
    ([0.6, 0.825], [0.5, 1.0], [0.1, 0.65])
    """
    names = list(output.member_prob_up)
    P = np.stack([output.member_prob_up[name][rows, column] for name in names] + [np.asarray(p, dtype=np.float64)])
    W = np.array([weights.get(name, 0.0) for name in names] + [0.0])[:, None] * ~np.isnan(P)
    present = W[:-1].sum(axis=0)
    share = np.where(np.isnan(P[-1]), 0.0, np.clip(share, 0.0, 1.0))
    alone = (share >= 1.0) | ((present == 0) & (share > 0))  # all the weight, or the only probability
    # The members keep their weights (a share of 0 then changes no bit of their combination); the joining
    # member gets share / (1 - share) of theirs, or all of it.
    W[-1] = np.where(alone, 1.0, present * share / np.where(alone, 1.0, 1.0 - share))
    W[:-1] *= ~alone
    q, agreement, confidence = _combine(output.strategy, P[:, :, None], W[:, :, None])
    return q[:, 0], agreement[:, 0], confidence[:, 0]


class Ensemble:
    """Members combined per horizon by ``strategy``; ``expected`` names members that should be there.

    ``horizons`` defaults to every horizon some member covers; each must be covered by a member with
    a positive weight. A member named in ``expected`` but not given is reported in every output's
    ``missing`` (and logged once here), so running without e.g. the sequence model is visible.
    """

    def __init__(self, members: Sequence[Member], strategy: str = "weighted_average",
                 horizons: Iterable[int] | None = None, expected: Iterable[str] = ()) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown ensemble strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ConfigError(f"ensemble member names must be unique, got {names}")
        self.members = tuple(members)
        self.strategy = strategy
        self.horizons = tuple(horizons) if horizons is not None else tuple(sorted({h for m in members for h in m.horizons}))
        uncovered = [h for h in self.horizons if not any(h in m.horizons and m.weight > 0 for m in members)]
        if not self.horizons or uncovered:
            raise ConfigError(f"no ensemble member (with a positive weight) predicts horizon(s) {uncovered or '(none)'}")
        self.absent = tuple(n for n in dict.fromkeys(expected) if n not in names)
        if self.absent:
            log.warning("ensemble runs without %s: not loaded; using %s", ", ".join(self.absent), ", ".join(names))
        # Where each member's columns go in the (members, n, horizons) stack; computed once, not per batch.
        self._columns = [[(j, self.horizons.index(h)) for j, h in enumerate(m.horizons) if h in self.horizons]
                         for m in self.members]
        # One member of weight 1 with every horizon in order (a distilled student, LightGBM alone): every
        # strategy gives its P(up) itself, agreement 1 and confidence |2p - 1|; combine skips the stacking.
        alone = len(self.members) == 1 and self.members[0].weight == 1.0 and tuple(self.members[0].horizons) == self.horizons
        self._alone = self.members[0] if alone else None

    versions = property(lambda self: {m.name: m.version for m in self.members})

    def combine(self, probabilities: Mapping[str, np.ndarray | None], n: int,
                output: type[EnsembleOutput] = EnsembleOutput, **extra: object) -> EnsembleOutput:
        """Combine members' outputs ((n, len(member.horizons)) each, None = not available for this batch) into
        an ``output`` (a subclass adds its own fields through ``extra``: built once, not copied)."""
        if self._alone is not None:
            p = probabilities.get(self._alone.name)
            if p is not None and p.shape == (n, len(self.horizons)) and not np.isnan(p).any():
                p = np.array(p, dtype=np.float64)  # what the stacking below gives, to the bit
                return output(self.horizons, p, confidence_of(p), np.ones(p.shape), self.strategy,
                              {self._alone.name: self._alone.version}, self.absent, member_prob_up={self._alone.name: p}, **extra)
        P = np.full((len(self.members), n, len(self.horizons)), np.nan)
        for i, member in enumerate(self.members):
            p = probabilities.get(member.name)
            if p is not None:
                for j, col in self._columns[i]:
                    P[i, :, col] = p[:, j]
        weights = np.array([m.weight for m in self.members]).reshape(-1, 1, 1)
        W = np.where(np.isnan(P), 0.0, weights)
        p, agreement, confidence = _combine(self.strategy, P, W)
        used = {m.name: m.version for m in self.members if probabilities.get(m.name) is not None}
        missing = self.absent + tuple(m.name for m in self.members if m.name not in used)
        return output(self.horizons, p, confidence, agreement, self.strategy, used, missing,
                      member_prob_up={m.name: P[i] for i, m in enumerate(self.members) if m.name in used}, **extra)

    def score(self, features: np.ndarray, windows: np.ndarray | None = None,
              states: Mapping[str, np.ndarray] | None = None) -> EnsembleOutput:
        """Every member on the batch (one call each), combined; ``states``: member name -> the recurrent
        state of each row's series for the step members (their new states are in the output)."""
        features = np.asarray(features)
        runs = {m.name: m.run(features, windows, (states or {}).get(m.name)) for m in self.members}
        return self.combine({name: p for name, (p, _) in runs.items()}, len(features),
                            states={name: new for name, (_, new) in runs.items() if new is not None})

    @property
    def step_members(self) -> tuple[Member, ...]:
        """The members that keep a recurrent state per series."""
        return tuple(m for m in self.members if m.reads == STEPS)

    def predict_proba(self, features: np.ndarray, windows: np.ndarray | None = None) -> np.ndarray:
        """(n, len(horizons)) ensemble P(up)."""
        return self.score(features, windows).prob_up

    def predict_proba_one(self, x: np.ndarray, window: np.ndarray | None = None) -> dict[int, float]:
        """{horizon: P(up)} for one feature vector (and its window, if a member reads windows)."""
        windows = None if window is None else np.asarray(window)[None]
        return dict(zip(self.horizons, self.predict_proba(np.asarray(x).reshape(1, -1), windows)[0].tolist()))
