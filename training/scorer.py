"""A model directory or bundle loaded as evaluation, the registry and the retrain worker need it: P(up) per
horizon from every member it serves (the sequence member too, on the windows the stream would give it),
and what the model was trained on (its metadata)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.candle import Candle
from core.errors import ConfigError
from training.dataset import Dataset
from models.metadata import BUNDLE_FILE, METADATA_FILE, BundleConfig, ModelMetadata, horizon_dir

__all__ = ["Scorer", "load_scorer", "member_probabilities", "score_by_series", "score_datasets"]


@dataclass(frozen=True)
class Scorer:
    """A loaded model as evaluation needs it: P(up) per horizon and what it was trained on.

    ``reads_windows``: a member (the sequence model) reads each row's 60-candle window, so rows are scored
    with :meth:`score_series`, which rebuilds those windows from the candles; without one, :meth:`predict`
    on feature rows is the whole model.
    """

    path: Path
    kind: str                      # "direction" | "bundle"
    name: str
    version: str
    horizons: tuple[int, ...]
    metadata: tuple[ModelMetadata, ...]
    model: Any                     # DirectionModel | ModelBundle
    reads_windows: bool = False

    def predict(self, X: np.ndarray, horizon: int, windows: np.ndarray | None = None) -> np.ndarray:
        if self.kind == "bundle":
            return self.model.score(X, windows).prob_up[:, self.horizons.index(horizon)]
        return self.model.predict_proba(X)

    def score_series(self, candles: Sequence[Candle], X: np.ndarray, open_times: np.ndarray) -> np.ndarray:
        """(n, len(horizons)) P(up) for rows of one series: ``X`` their feature rows, ``open_times`` their
        candles. Every member scores, a sequence member on the window the stream holds at that candle."""
        if self.kind != "bundle":
            return self.model.predict_proba(X).reshape(len(X), 1)
        windows = None
        if self.reads_windows and len(X):
            from training.mamba_windows import windows_at

            windows = windows_at(candles, open_times)
        return self.model.score(X, windows).prob_up


def load_scorer(model_dir: str | Path) -> Scorer:
    """A DirectionModel directory (``model.json``) or a bundle (``bundle.json``, loaded as the worker
    serves it, every member included); ConfigError otherwise."""
    from models.direction import DirectionModel
    from models.ensemble import FEATURES
    from models.loading import load_model

    path = Path(model_dir).resolve()
    if (path / BUNDLE_FILE).is_file():
        bundle = load_model(path)
        config = BundleConfig.from_json((path / BUNDLE_FILE).read_text("utf-8"))
        metadata = tuple(ModelMetadata.from_json((path / horizon_dir(h) / METADATA_FILE).read_text("utf-8"))
                         for h in config.horizons)
        reads_windows = any(m.reads != FEATURES for m in bundle.members)
        return Scorer(path, "bundle", metadata[0].name, bundle.version, tuple(bundle.horizons), metadata, bundle,
                      reads_windows=reads_windows)
    if (path / METADATA_FILE).is_file():
        model = DirectionModel.load(path)
        return Scorer(path, "direction", model.name, model.version, (model.horizon,), (model.metadata,), model)
    raise ConfigError(f"{model_dir}: neither a model directory ({METADATA_FILE}) nor a bundle ({BUNDLE_FILE})")


def score_datasets(scorer: Scorer, series: Sequence[Sequence[Candle]], datasets: Mapping[int, Dataset]
                   ) -> dict[int, np.ndarray]:
    """P(up) for every row of each horizon's dataset (rows of ``series``), from every member of the model.

    Without a sequence member that is :meth:`Scorer.predict` per horizon. With one, each series is scored
    once over the union of its rows (one window per candle, not one per horizon) and each horizon takes
    its column.
    """
    if not scorer.reads_windows:
        return {h: scorer.predict(ds.X, h) for h, ds in datasets.items()}
    out = score_by_series(series, datasets, scorer.horizons,
                          lambda candles, X, times: {"model": scorer.score_series(candles, X, times)})["model"]
    missing = {h: int(np.isnan(p).sum()) for h, p in out.items() if np.isnan(p).any()}
    if missing:
        raise ConfigError(f"rows of a series that was not given cannot be scored: {missing} per horizon")
    return out


def member_probabilities(scorer: Scorer, series: Sequence[Sequence[Candle]], datasets: Mapping[int, Dataset]
                         ) -> dict[str, dict[int, np.ndarray]]:
    """Each member's own P(up) ({member: {horizon: (n,)}}) on the datasets' rows: what choosing the
    members' weights needs (training.default_bundle)."""
    from training.mamba_windows import windows_at

    def in_model_columns(member, p):  # a member's own horizons -> the model's (NaN where it has none)
        out = np.full((len(p), len(scorer.horizons)), np.nan)
        for j, h in enumerate(scorer.horizons):
            if h in member.horizons:
                out[:, j] = p[:, member.horizons.index(h)]
        return out

    def score(candles, X, times):
        windows = windows_at(candles, times) if scorer.reads_windows else None
        return {m.name: in_model_columns(m, m.run(X, windows if m.reads != "features" else None, None)[0])
                for m in scorer.model.members}
    return score_by_series(series, datasets, scorer.horizons, score)


def score_by_series(series: Sequence[Sequence[Candle]], datasets: Mapping[int, Dataset], horizons: Sequence[int],
                    score) -> dict[str, dict[int, np.ndarray]]:
    """``score(candles, X, open_times) -> {name: (n, len(horizons))}`` called once per series over the union
    of its rows in every horizon's dataset; each horizon's rows take their column: {name: {horizon: (n,)}}."""
    out: dict[str, dict[int, np.ndarray]] = {}
    horizons = tuple(horizons)
    for candles in series:
        if not len(candles):
            continue
        symbol, timeframe = candles[0].symbol, candles[0].timeframe
        rows = {h: np.flatnonzero((ds.meta.symbol == symbol) & (ds.meta.timeframe == timeframe))
                for h, ds in datasets.items()}
        times = np.unique(np.concatenate([datasets[h].meta.open_time[idx] for h, idx in rows.items()]))
        if not len(times):
            continue
        X = np.empty((len(times), next(iter(datasets.values())).X.shape[1]))
        for h, idx in rows.items():  # a candle's feature row is the same for every horizon
            X[np.searchsorted(times, datasets[h].meta.open_time[idx])] = datasets[h].X[idx]
        for name, prob in score(candles, X, times).items():
            per_h = out.setdefault(name, {h: np.full(len(ds), np.nan) for h, ds in datasets.items()})
            for h, idx in rows.items():
                per_h[h][idx] = prob[np.searchsorted(times, datasets[h].meta.open_time[idx]), horizons.index(h)]
    if not out:
        raise ConfigError("no rows of the given series to score")
    return out
