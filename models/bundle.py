"""A model bundle directory loaded as one scorer: the horizon models, an optional sequence model, the ensemble.

Layout (written by :func:`training.train.train_horizons`)::

    bundle_dir/bundle.json      strategy, weights, the version of each horizon model
    bundle_dir/h1/ ... h5/      one DirectionModel directory per horizon
    bundle_dir/mamba/           optional; loaded by the ``sequence_loader`` given to :meth:`ModelBundle.load`

:class:`ModelBundle` is a :class:`~models.base.ServableModel` (the contract the stream scores with):
:meth:`ModelBundle.score` gives every horizon with confidence and the member versions, ``horizon`` is 1
when the bundle has it, and ``predict_proba(X) -> (n,)`` is the ensemble's P(up) there. Its ``version``
is derived from the members' versions, weights and the strategy: the same models combined the same way
always carry the same version, and any change to what produces a prediction changes it.

>>> import pathlib, tempfile
>>> import numpy as np
>>> from core.candle_files import read_candle_file
>>> from training.train import BUNDLED, train_horizons_on_series
>>> bundle_dir = pathlib.Path(tempfile.mkdtemp())
>>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1200]
>>> _ = train_horizons_on_series([eth], bundle_dir, horizons=(1, 2), progress=False, num_boost_round=5)
>>> bundle = ModelBundle.load(bundle_dir)     # no mamba/ here: the ensemble says it runs without it
>>> out = bundle.score(np.zeros((3, 41)))
>>> out.horizons, out.prob_up.shape, sorted(out.versions), out.missing, bundle.version.startswith("ens-")
((1, 2), (3, 2), ['lgbm'], ('mamba',), True)
>>> bool((bundle.predict_proba(np.zeros((3, 41))) == out.prob_up[:, 0]).all()), bundle.horizon
(True, 1)
>>> bundle.stats()["members"]["lgbm"]["calls"]
2
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.base import ScoreOutput, ServableModel
from models.direction import DirectionHorizons
from models.ensemble import FEATURES, STEPS, WINDOWS, Ensemble, Member, ProbaModel
from models.metadata import BUNDLE_FILE, LGBM_MEMBER, BundleConfig, horizon_dir
from models.profile import TrainingProfile, accuracy_by_horizon, read_reference
from core.errors import ConfigError
from core.latency import LatencyWindow, percentile

__all__ = ["SEQUENCE_DIR", "SEQUENCE_MEMBER", "BundleOutput", "CallStats", "ModelBundle", "bundle_version"]

log = logging.getLogger(__name__)

SEQUENCE_MEMBER = "mamba"
SEQUENCE_DIR = "mamba"
SequenceLoader = Callable[[Path], ProbaModel]  # e.g. the sequence model's own ``load``; not imported here

BundleOutput = ScoreOutput  # what a bundle's score returns: every servable model's output


def bundle_version(ensemble: Ensemble) -> str:
    """``ens-`` + 12 hex digits of a hash over the strategy and each member's (name, version, weight).

    >>> from models.ensemble import Member
    >>> class M:
    ...     version, horizons = "v1", (1,)
    >>> bundle_version(Ensemble([Member("a", M())])) == bundle_version(Ensemble([Member("a", M())]))
    True
    >>> bundle_version(Ensemble([Member("a", M())])) == bundle_version(Ensemble([Member("a", M())], "majority"))
    False
    """
    key = {"strategy": ensemble.strategy, "horizons": list(ensemble.horizons),
           "members": sorted([m.name, m.version, m.weight] for m in ensemble.members)}
    return "ens-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


class CallStats:
    """Durations and batch sizes of the last ``size`` calls of one model, summarised on demand.

    >>> w = CallStats(size=3)
    >>> for us, rows in [(10, 1), (20, 64), (30, 1), (40, 1)]:
    ...     w.record(us / 1e6, rows)
    >>> s = w.summary(); s["calls"], s["rows"], s["p50_us"], s["window"], s["last_batch"]
    (4, 67, 30.0, 3, 1)
    """

    def __init__(self, size: int = 1024) -> None:
        self._seconds = LatencyWindow(size)
        self._rows: deque[int] = deque(maxlen=size)
        self.calls = 0
        self.rows = 0
        self._lock = threading.Lock()  # scoring may run in executor threads while a web view reads

    def record(self, seconds: float, rows: int) -> None:
        with self._lock:
            self._seconds.add(seconds)
            self._rows.append(rows)
            self.calls += 1
            self.rows += rows

    def summary(self) -> dict[str, Any]:
        with self._lock:
            seconds, rows = self._seconds.values(), list(self._rows)
            calls, total_rows = self.calls, self.rows
        out: dict[str, Any] = {"calls": calls, "rows": total_rows, "window": len(seconds)}
        if seconds:
            out.update(p50_us=round(percentile(seconds, 50) * 1e6, 1), p99_us=round(percentile(seconds, 99) * 1e6, 1),
                       mean_batch=round(sum(rows) / len(rows), 1), max_batch=max(rows), last_batch=rows[-1])
        return out


def _read_config(bundle_dir: Path) -> BundleConfig:
    try:
        return BundleConfig.from_json((bundle_dir / BUNDLE_FILE).read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{bundle_dir / BUNDLE_FILE}: bundle configuration not found") from None
    except ConfigError as exc:
        raise ConfigError(f"{bundle_dir}: {exc}") from None


class ModelBundle(ServableModel):
    """The ensemble of a bundle directory, timed per member. Build it with :meth:`load`."""

    name = "ensemble"

    def __init__(self, ensemble: Ensemble, config: BundleConfig, stats_size: int = 1024) -> None:
        self.ensemble = ensemble
        self.config = config
        self._version = bundle_version(ensemble)
        # The main horizon (signals, the single-horizon predict_proba): horizon 1 when the bundle has it.
        self._horizon = 1 if 1 in ensemble.horizons else ensemble.horizons[0]
        self._column = ensemble.horizons.index(self._horizon)
        self._latency = {m.name: CallStats(stats_size) for m in ensemble.members}
        self._score_latency = CallStats(stats_size)
        self.profile = TrainingProfile()  # set by load from the bundle's metrics and reference.npy

    @classmethod
    def load(cls, bundle_dir: str | Path, providers: Sequence[str] | str | None = None, intra_op_threads: int = 1,
             sequence_loader: SequenceLoader | None = None, strategy: str | None = None,
             weights: Mapping[str, float] | None = None, stats_size: int = 1024,
             tree_runtime: str = "auto") -> ModelBundle:
        """Load ``bundle.json``, its horizon models and (with a loader) ``mamba/``; ``strategy`` and
        ``weights`` from configuration override the file's; ``tree_runtime`` as
        :meth:`DirectionHorizons.load` takes it. Warmed up before it is returned."""
        bundle_dir = Path(bundle_dir)
        config = _read_config(bundle_dir)
        if strategy is not None or weights is not None:
            config = dataclasses.replace(config, strategy=strategy or config.strategy,
                                         weights={**config.weights, **(weights or {})})
            config = BundleConfig.from_json(config.to_json())  # the same validation as the file
        lgbm = DirectionHorizons.load({h: bundle_dir / horizon_dir(h) for h in config.horizons},
                                      providers, intra_op_threads, tree_runtime)
        written = config.members.get(LGBM_MEMBER, {})
        found = {horizon_dir(h): v for h, v in lgbm.versions.items()}
        if written != found:
            raise ConfigError(f"{bundle_dir}: {BUNDLE_FILE} names {written} but the directories hold {found}; "
                              "a horizon model was replaced without its bundle (or the reverse)")
        weight = lambda name: config.weights.get(name, 1.0)  # noqa: E731
        members = [Member(LGBM_MEMBER, lgbm, FEATURES, weight=weight(LGBM_MEMBER))]
        if (bundle_dir / SEQUENCE_DIR).is_dir():
            if sequence_loader is None:
                log.warning("%s: %s/ is present but no sequence loader was given; scoring without it",
                            bundle_dir, SEQUENCE_DIR)
            else:
                sequence = sequence_loader(bundle_dir / SEQUENCE_DIR)
                # Step mode (one step per candle, a state per series) when the loader gives it; else windows.
                members.append(Member(SEQUENCE_MEMBER, sequence, STEPS if hasattr(sequence, "step") else WINDOWS,
                                      weight=weight(SEQUENCE_MEMBER)))
        ensemble = Ensemble(members, config.strategy, config.horizons, expected=config.weights)
        bundle = cls(ensemble, config, stats_size)
        # Bundles trained before bundle.json carried metrics: the LightGBM set's own, per horizon.
        metrics = config.metrics or {horizon_dir(m.horizon): m.metrics for m in lgbm.metadata}
        reference = read_reference(bundle_dir)
        if reference is None:
            reference = read_reference(bundle_dir / horizon_dir(config.horizons[0]))
        bundle.profile = TrainingProfile(
            accuracy_by_horizon({h: metrics.get(horizon_dir(h), {}) for h in config.horizons}), reference)
        bundle._warm_up(len(lgbm.feature_names))
        log.info("bundle %s loaded from %s: %s, strategy %s", bundle.version, bundle_dir, ensemble.versions,
                 config.strategy)
        return bundle

    def _warm_up(self, n_features: int) -> None:
        # ORT allocates its arenas on the first run; a candle must not pay for that. Not counted in stats.
        for m in self.ensemble.members:
            if m.reads == FEATURES:
                m.predict_proba(np.zeros((1, n_features)), None)
            elif m.reads == STEPS:
                m.run(np.zeros((1, n_features)), None, m.model.initial_state(1))

    version = property(lambda self: self._version)
    horizon = property(lambda self: self._horizon)
    versions = property(lambda self: self.ensemble.versions)
    horizons = property(lambda self: self.ensemble.horizons)
    members = property(lambda self: self.ensemble.members)
    step_members = property(lambda self: self.ensemble.step_members)
    strategy = property(lambda self: self.ensemble.strategy)
    feature_names = property(lambda self: self.ensemble.members[0].model.feature_names)
    provider = property(lambda self: getattr(self.ensemble.members[0].model, "provider", "n/a"))

    def score(self, features: np.ndarray, windows: np.ndarray | None = None,
              given: Mapping[str, tuple[np.ndarray, float]] | None = None,
              states: Mapping[str, np.ndarray] | None = None) -> ScoreOutput:
        """Every horizon for a batch: one call per member, combined by the ensemble. ``given``: member
        name -> (its P(up) for these rows, the seconds it took), computed by the caller (the batch step runs
        a step member candle by candle for a series with several candles). ``states``: member name -> each
        row's recurrent state for the step members (the new ones come back in ``states``)."""
        started = time.perf_counter()
        features = np.asarray(features)
        if windows is not None and len(windows) != len(features):
            raise ValueError(f"{len(features)} feature rows but {len(windows)} windows")
        probabilities, new_states = {}, {}
        for member in self.ensemble.members:
            if given and member.name in given:
                probabilities[member.name], seconds = given[member.name]
                self._latency[member.name].record(seconds, len(features))
                continue
            t0 = time.perf_counter()
            p, new = member.run(features, windows, (states or {}).get(member.name))
            if p is not None:
                self._latency[member.name].record(time.perf_counter() - t0, len(features))
            probabilities[member.name] = p
            if new is not None:
                new_states[member.name] = new
        out = self.ensemble.combine(probabilities, len(features), ScoreOutput, states=new_states, version=self.version)
        self._score_latency.record(time.perf_counter() - started, len(features))
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The ensemble's P(up) at :attr:`horizon` for each feature row: the DirectionModel interface."""
        return self.score(X).prob_up[:, self._column]

    def predict_proba_one(self, x: np.ndarray) -> float:
        return float(self.predict_proba(np.asarray(x).reshape(1, -1))[0])

    def stats(self) -> dict[str, Any]:
        """Latency (p50/p99 over the last calls), batch sizes and provider per member, and for the whole step."""
        members = {m.name: {"version": m.version, "weight": m.weight, "reads": m.reads, "horizons": list(m.horizons),
                            "provider": getattr(m.model, "provider", "n/a"), **self._latency[m.name].summary()}
                   for m in self.ensemble.members}
        return {"version": self.version, "strategy": self.strategy, "horizons": list(self.horizons),
                "members": members, "missing": list(self.ensemble.absent), "score": self._score_latency.summary()}

    def __repr__(self) -> str:
        return f"ModelBundle(version={self.version!r}, members={self.versions}, strategy={self.strategy!r})"
