"""Train the LightGBM direction model on candle files and export it: ``model.onnx`` + ``model.json``, and
``model.txt`` (the same trees in LightGBM's text format, which the CPU compiles: models/compiled_trees.py).

Deterministic end to end (fixed seed, ``deterministic=True``, fixed thread count, reproducible ONNX
bytes), so retraining on the same candles yields the same version. Nothing is written unless the ONNX
export gives the native model's probabilities on the validation rows.

>>> import pathlib, tempfile
>>> from core.candle_files import read_candle_file
>>> tmp_dir = pathlib.Path(tempfile.mkdtemp())
>>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1500]
>>> info = train_on_series([eth], tmp_dir, progress=False)
>>> info.version.startswith("lgbm-h1-"), sorted(p.name for p in tmp_dir.iterdir())
(True, ['model.json', 'model.onnx', 'model.txt', 'reference.npy'])
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from tqdm.auto import tqdm

from models.metadata import (BUNDLE_FILE, LGBM_MEMBER, METADATA_FILE, NATIVE_FILE, ONNX_FILE, BundleConfig, ModelMetadata,
                             horizon_dir)
from models.profile import REFERENCE_FILE, write_reference
from core.candle import Candle
from core.candle_files import read_candle_file
from core.timestamps import format_time
from training.dataset import BUNDLED, Dataset, build_dataset, build_datasets, time_split
from training.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    check_parity,
    float32_thresholds,
    model_version,
    onnx_opset,
    to_onnx,
)
from training.metrics import direction_metrics

__all__ = [
    "BUNDLED", "HORIZONS", "LGBM_MEMBER", "LGBM_PARAMS", "MODEL_NAME", "NUM_BOOST_ROUND", "BundleInfo", "ModelInfo",
    "train_horizons", "train_horizons_on_series", "train_model", "train_on_series",
]

log = logging.getLogger(__name__)

MODEL_NAME = "lgbm-direction"
NUM_BOOST_ROUND = 100
HORIZONS = (1, 2, 3, 4, 5)  # candles ahead (issue 4)
# Small, strongly regularised trees: one-candle direction is mostly noise, and a big model only fits it.
LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    # Reproducibility: same data -> same trees -> same ONNX bytes -> same version.
    "seed": 42,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbose": -1,
}


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`train_model` wrote and how the model did on validation."""

    out_dir: Path
    metadata: ModelMetadata
    parity_max_abs_diff: float
    seconds: float
    # The native model, in memory only: for comparisons (ONNX vs native) without retraining.
    booster: lgb.Booster | None = field(default=None, repr=False, compare=False)

    version = property(lambda self: self.metadata.version)
    metrics = property(lambda self: self.metadata.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "version": self.version, "metrics": self.metrics,
                "n_train": self.metadata.n_train, "n_valid": self.metadata.n_valid,
                "parity_max_abs_diff": self.parity_max_abs_diff, "seconds": round(self.seconds, 2)}


def _training_range(train: Dataset, valid: Dataset) -> dict[str, dict[str, str]]:
    ranges = {}
    for symbol in dict.fromkeys(train.meta.symbol.tolist() + valid.meta.symbol.tolist()):
        t = train.meta.open_time[train.meta.symbol == symbol]
        v = valid.meta.open_time[valid.meta.symbol == symbol]
        both = np.concatenate([t, v])
        ranges[symbol] = {"first": format_time(int(both.min())), "last": format_time(int(both.max())),
                          "valid_from": format_time(int(v.min()))}
    return ranges


def _write_atomically(path: Path, data: bytes) -> None:
    # A worker may be loading this directory: it must see the old file or the new one, never half of one.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fit(train: Dataset, progress: bool, num_boost_round: int = NUM_BOOST_ROUND) -> lgb.Booster:
    with tqdm(total=num_boost_round, unit="round", desc=f"lightgbm h{train.horizon}", disable=not progress) as bar:
        return lgb.train(
            LGBM_PARAMS,
            lgb.Dataset(train.X.astype(np.float32).astype(np.float64), train.y,
                        feature_name=list(train.feature_names), free_raw_data=True),
            num_boost_round=num_boost_round,
            callbacks=[lambda env: bar.update(1)],
        )


def train_on_series(series: Sequence[Sequence[Candle]], out_dir: str | Path, horizon: int = 1,
                    progress: bool = True, dead_zone: float | None = 0.0, valid_fraction: float = 0.2,
                    num_boost_round: int = NUM_BOOST_ROUND) -> ModelInfo:
    """Train on candle series (one per symbol and timeframe) and write the model to ``out_dir``."""
    started = time.perf_counter()
    dataset = build_dataset(series, horizon, dead_zone, progress)
    return _train_dataset(dataset, out_dir, progress, dead_zone, valid_fraction, num_boost_round, started)


def _train_dataset(dataset: Dataset, out_dir: str | Path, progress: bool, dead_zone: float | None,
                   valid_fraction: float, num_boost_round: int, started: float) -> ModelInfo:
    out_dir = Path(out_dir)
    horizon = dataset.horizon
    train, valid = time_split(dataset, valid_fraction)
    # The served model sees float32 (ONNX's input type): trees made exact for it, metrics on the same values.
    booster = float32_thresholds(_fit(train, progress, num_boost_round))
    onnx_model = to_onnx(booster, len(train.feature_names), graph_name=f"{MODEL_NAME}-h{horizon}")
    onnx_bytes = onnx_model.SerializeToString()
    native_bytes = booster.model_to_string().encode("utf-8")  # the same trees, for the compiled CPU runtime
    diff = check_parity(onnx_bytes, booster, valid.X)
    prob_up = booster.predict(valid.X.astype(np.float32).astype(np.float64))
    metadata = ModelMetadata(
        name=MODEL_NAME, version=model_version(horizon, onnx_bytes), horizon=horizon,
        feature_names=train.feature_names, onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        input_name=INPUT_NAME, output_name=OUTPUT_NAME, onnx_opset=onnx_opset(onnx_model),
        symbols=tuple(dict.fromkeys(train.meta.symbol.tolist())),
        timeframes=tuple(dict.fromkeys(train.meta.timeframe.tolist())),
        training_range=_training_range(train, valid),
        metrics=direction_metrics(valid.y, prob_up, valid.meta.last_return),
        params={**LGBM_PARAMS, "num_boost_round": num_boost_round, "dead_zone": dead_zone,
                "valid_fraction": valid_fraction},
        n_train=len(train), n_valid=len(valid),
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        lightgbm_version=lgb.__version__, native_sha256=hashlib.sha256(native_bytes).hexdigest(),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(out_dir / ONNX_FILE, onnx_bytes)
    _write_atomically(out_dir / NATIVE_FILE, native_bytes)
    write_reference(out_dir, train.X)  # what live features are compared with (learning.features_drift)
    _write_atomically(out_dir / METADATA_FILE, metadata.to_json().encode("utf-8"))
    info = ModelInfo(out_dir, metadata, diff, time.perf_counter() - started, booster)
    log.info("trained %s on %d rows (%d validation) in %.1f s: %s", metadata.version, len(train), len(valid),
             info.seconds, metadata.metrics)
    return info


def train_model(files: Sequence[str | Path], out_dir: str | Path, horizon: int = 1, progress: bool = True,
                **options: Any) -> ModelInfo:
    """Train on candle files (the format of ``data/candles/``); ``options`` go to :func:`train_on_series`."""
    return train_on_series(read_series(files), out_dir, horizon, progress, **options)


def read_series(files: Sequence[str | Path]) -> list[Sequence[Candle]]:
    """The valid candles of each file (invalid rows are logged, never used)."""
    series = []
    for path in files:
        cf = read_candle_file(path)
        if cf.rejected:
            row, reason = cf.rejected[0]
            log.warning("%s: %d invalid row(s) left out, first: row %d: %s", path, len(cf.rejected), row, reason)
        series.append(cf.candles)
    return series


@dataclass(frozen=True)
class BundleInfo:
    """What :func:`train_horizons` wrote: one :class:`ModelInfo` per horizon and the bundle configuration."""

    out_dir: Path
    config: BundleConfig
    models: dict[int, ModelInfo]

    versions = property(lambda self: {h: m.version for h, m in self.models.items()})

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "strategy": self.config.strategy, "weights": self.config.weights,
                "models": {f"h{h}": m.to_dict() for h, m in self.models.items()}}


def train_horizons_on_series(series: Sequence[Sequence[Candle]], out_dir: str | Path,
                             horizons: Sequence[int] = HORIZONS, progress: bool = True,
                             strategy: str = "weighted_average", weights: dict[str, float] | None = None,
                             dead_zone: float | None = 0.0, valid_fraction: float = 0.2,
                             num_boost_round: int = NUM_BOOST_ROUND) -> BundleInfo:
    """One LightGBM model per horizon in ``out_dir/h<k>/`` and the ensemble's ``out_dir/bundle.json``.

    >>> import pathlib, tempfile
    >>> from core.candle_files import read_candle_file
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1200]
    >>> info = train_horizons_on_series([eth], out, horizons=(1, 2), progress=False, num_boost_round=5)
    >>> sorted(p.name for p in out.iterdir()), info.config.members["lgbm"]["h2"] == info.models[2].version
    (['bundle.json', 'h1', 'h2', 'reference.npy'], True)
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    horizons = tuple(horizons)
    # The features are the slow part (one FeatureState step per candle): computed once for every horizon.
    datasets = build_datasets(series, horizons, dead_zone, progress)
    models: dict[int, ModelInfo] = {}
    for h in tqdm(horizons, unit="horizon", desc="horizons", disable=not progress):
        models[h] = _train_dataset(datasets[h], out_dir / horizon_dir(h), progress, dead_zone, valid_fraction,
                                   num_boost_round, time.perf_counter())
    config = BundleConfig(
        horizons=horizons,
        members={LGBM_MEMBER: {horizon_dir(h): models[h].version for h in horizons}},
        strategy=strategy,
        weights=dict(weights) if weights is not None else {LGBM_MEMBER: 1.0, "mamba": 1.0},
        # As trained, the ensemble is the LightGBM set alone: its validation metrics are the bundle's.
        metrics={horizon_dir(h): dict(models[h].metadata.metrics) for h in horizons},
    )
    shutil.copyfile(out_dir / horizon_dir(horizons[0]) / REFERENCE_FILE, out_dir / REFERENCE_FILE)
    # Round-trip through the reader so that training cannot write a file serving would refuse.
    BundleConfig.from_json(config.to_json())
    # Written last: a bundle.json names versions that are already on disk, never the reverse.
    _write_atomically(out_dir / BUNDLE_FILE, config.to_json().encode("utf-8"))
    log.info("trained horizons %s in %.1f s: %s", horizons, time.perf_counter() - started,
             {h: m.version for h, m in models.items()})
    return BundleInfo(out_dir, config, models)


def train_horizons(files: Sequence[str | Path], out_dir: str | Path, horizons: Sequence[int] = HORIZONS,
                   progress: bool = True, **options: Any) -> BundleInfo:
    """:func:`train_horizons_on_series` on candle files; ``options`` go to it."""
    return train_horizons_on_series(read_series(files), out_dir, horizons, progress, **options)
