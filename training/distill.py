"""Knowledge distillation: shallow LightGBM students, one per horizon, trained on the full model's soft targets.

The teacher is the whole model as the stream serves it: a bundle's P(up) comes from every member, the
sequence member on the window the stream holds at each candle (:func:`training.scorer.score_datasets`).
For each horizon the teacher serves, a student learns ``alpha * hard label + (1 - alpha) *
sigmoid(logit(p_teacher) / T)`` with LightGBM's cross-entropy objective (which takes labels in [0, 1]);
the temperature ``T`` > 1 softens the teacher's probabilities so the student also learns how sure the
teacher is. The students are written as a LightGBM-only bundle (``h<k>/`` ONNX + ``model.json`` each,
parity-checked, and ``bundle.json``) that :func:`models.loading.load_model` serves like any bundle, by
default into ``<teacher>/student/``, where a worker serving the teacher finds it
(streams/serving_chain.py: the batches the teacher would score over the latency budget). ``distill.json``
beside it is the report: per horizon the accuracy each keeps (student / teacher on the same validation
rows), and the cost per row of each as it serves (the teacher with its step member's steps) at batch 1
and 1,000.

>>> soft_targets(np.array([0.9, 0.5]), np.array([1, 0]), temperature=2.0, alpha=0.5).round(4).tolist()
[0.875, 0.25]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from core.candle import Candle
from core.errors import ConfigError
from core.timing import best_seconds
from training.dataset import Dataset, build_datasets, time_split
from training.train import LGBM_PARAMS, read_series

__all__ = ["DistillReport", "GOALS", "STUDENT_LEAVES", "STUDENT_PARAMS", "STUDENT_ROUNDS", "distill", "distill_series",
           "soft_targets"]

# Shallow on purpose: the student exists to be fast. Tuned on the bundled candles (docs/training.md).
STUDENT_LEAVES = 3
STUDENT_ROUNDS = 30
STUDENT_PARAMS: dict[str, Any] = {**LGBM_PARAMS, "objective": "cross_entropy", "num_leaves": STUDENT_LEAVES,
                                  "min_data_in_leaf": 200}
GOALS = {"accuracy_kept": 0.95, "speed_up": 10.0}  # issue 15: per horizon, and per row at batch 1 and 1,000
BATCHES = (1, 1000)


def soft_targets(teacher_p: np.ndarray, hard: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """The blend of hard labels and the teacher's temperature-softened probabilities."""
    p = np.clip(np.asarray(teacher_p, dtype=np.float64), 1e-6, 1 - 1e-6)
    softened = 1.0 / (1.0 + np.exp(-np.log(p / (1.0 - p)) / temperature))
    return alpha * np.asarray(hard, dtype=np.float64) + (1.0 - alpha) * softened


@dataclass(frozen=True)
class DistillReport:
    """What :func:`distill` wrote and measured; accuracy per horizon (``"h1"``...), costs per batch size."""

    out_dir: str
    version: str                      # the student bundle's version (what its predictions carry)
    teacher_version: str
    members: list[str]                # the teacher's members that gave its P(up)
    horizons: list[int]
    teacher_accuracy: dict[str, float]
    student_accuracy: dict[str, float]
    accuracy_kept: dict[str, float]   # student / teacher, same validation rows
    teacher_us_per_row: dict[str, float]
    student_us_per_row: dict[str, float]
    speed_up: dict[str, float]
    goals_met: dict[str, bool]
    temperature: float
    alpha: float
    num_leaves: int
    num_boost_round: int
    n_train: dict[str, int]
    n_valid: dict[str, int]
    student_versions: dict[str, str]

    @property
    def accuracy_preservation(self) -> float:
        """The lowest accuracy kept over the horizons."""
        return min(self.accuracy_kept.values())

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "accuracy_preservation": self.accuracy_preservation}


def _as_served(model: Any, rows: np.ndarray) -> Callable[[], Any]:
    """One scoring of ``rows`` as the batch step does it (streams/scoring.py): each step member one step
    per row from its series' state (given to :meth:`score`), the other members on the rows (a window
    member on windows)."""
    from models.ensemble import STEPS, WINDOWS

    members = getattr(model, "members", ())
    steps = [m for m in members if m.reads == STEPS]
    windows = np.zeros((len(rows), 60, rows.shape[1]), dtype=np.float32) \
        if any(m.reads == WINDOWS for m in members) else None
    states = {m.name: m.model.initial_state(len(rows)) for m in steps}

    def call() -> Any:
        given = {}
        for m in steps:
            started = time.perf_counter()
            p, _ = m.run(rows, None, states[m.name])
            given[m.name] = (p, time.perf_counter() - started)
        return model.score(rows, windows, given or None)

    return call


def _costs(models: Sequence[Any], X: np.ndarray, seconds: float, rounds: int = 5) -> list[dict[str, float]]:
    """Each model's cost per row as served (microseconds), at each of :data:`BATCHES`: the best of
    ``rounds`` rounds of about ``seconds`` / ``rounds`` each, the models measured side by side
    (:func:`core.timing.best_seconds`)."""
    out: list[dict[str, float]] = [{} for _ in models]
    for batch in BATCHES:
        rows = np.ascontiguousarray(np.resize(X, (batch, X.shape[1])))  # repeats rows if there are fewer
        best = best_seconds([_as_served(m, rows) for m in models], rounds, seconds / rounds)
        for cost, b in zip(out, best):
            cost[f"batch_{batch}"] = round(b.wall / batch * 1e6, 2)
    return out


def _train_student(train: Dataset, targets: np.ndarray, num_leaves: int, num_boost_round: int) -> lgb.Booster:
    from training.export import float32_thresholds

    params = {**STUDENT_PARAMS, "num_leaves": num_leaves}
    booster = lgb.train(params, lgb.Dataset(train.X.astype(np.float32).astype(np.float64), targets,
                                            feature_name=list(train.feature_names)),
                        num_boost_round=num_boost_round)
    # cross_entropy and binary share the sigmoid link: relabel so the ONNX converter knows the tree set.
    relabelled = (booster.model_to_string().replace("objective=cross_entropy", "objective=binary sigmoid:1")
                  .replace("[objective: cross_entropy]", "[objective: binary]"))
    return float32_thresholds(lgb.Booster(model_str=relabelled))


def _write_student(h: int, booster: lgb.Booster, train: Dataset, valid: Dataset, out: Path, teacher_version: str,
                   teacher_acc: float, temperature: float, alpha: float, params: dict[str, Any]) -> tuple[str, dict]:
    """``out/h<k>/``: the horizon's student as a direction model directory; (its version, its metrics)."""
    from models.metadata import METADATA_FILE, NATIVE_FILE, ONNX_FILE, ModelMetadata, horizon_dir
    from training.export import INPUT_NAME, OUTPUT_NAME, check_parity, onnx_opset, to_onnx
    from training.metrics import direction_metrics

    onnx_model = to_onnx(booster, len(train.feature_names), graph_name=f"lgbm-student-h{h}")
    onnx_bytes = onnx_model.SerializeToString()
    native_bytes = booster.model_to_string().encode("utf-8")  # the same trees, for the compiled CPU runtime
    check_parity(onnx_bytes, booster, valid.X)
    version = f"student-h{h}-{hashlib.sha256(onnx_bytes).hexdigest()[:12]}"
    student_p = booster.predict(valid.X.astype(np.float32).astype(np.float64))
    metrics = direction_metrics(valid.y, student_p, valid.meta.last_return)
    metadata = ModelMetadata(
        name="lgbm-student", version=version, horizon=h, feature_names=train.feature_names,
        onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(), input_name=INPUT_NAME, output_name=OUTPUT_NAME,
        onnx_opset=onnx_opset(onnx_model), symbols=tuple(dict.fromkeys(train.meta.symbol.tolist())),
        timeframes=tuple(dict.fromkeys(train.meta.timeframe.tolist())),
        metrics={**metrics, "teacher": teacher_version, "teacher_accuracy": teacher_acc, "temperature": temperature,
                 "alpha": alpha},
        params=params, n_train=len(train), n_valid=len(valid), lightgbm_version=lgb.__version__,
        native_sha256=hashlib.sha256(native_bytes).hexdigest())
    target = out / horizon_dir(h)
    target.mkdir(parents=True, exist_ok=True)
    (target / ONNX_FILE).write_bytes(onnx_bytes)
    (target / NATIVE_FILE).write_bytes(native_bytes)
    (target / METADATA_FILE).write_text(metadata.to_json())
    return version, metrics


def _replace_dir(built: Path, out_dir: Path) -> None:
    """``built`` moved to ``out_dir``, replacing what was there with as short a gap as renames give."""
    old = out_dir.with_name(f".{out_dir.name}-old-{uuid.uuid4().hex[:8]}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(built, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def distill_series(teacher_dir: str | Path, series: Sequence[Sequence[Candle]], out_dir: str | Path | None = None, *,
                   temperature: float = 2.0, alpha: float = 0.5, num_leaves: int = STUDENT_LEAVES,
                   num_boost_round: int = STUDENT_ROUNDS, valid_fraction: float = 0.2, timing_s: float = 2.0,
                   progress: bool = True) -> DistillReport:
    """Train, export and measure a student per horizon of the model (or bundle) in ``teacher_dir`` on
    candle ``series``; written to ``out_dir`` (default ``<teacher_dir>/student/``), replacing what is there.
    ``timing_s``: about how long the cost of each model at each batch size is measured (best of 5 rounds)."""
    from models.loading import DISTILL_FILE, STUDENT_DIR, load_model
    from models.metadata import BUNDLE_FILE, LGBM_MEMBER, BundleConfig, horizon_dir
    from models.profile import write_reference
    from training.scorer import load_scorer, score_datasets

    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError("temperature must be > 0 and alpha within 0..1")
    if num_leaves < 2 or num_boost_round < 1:
        raise ValueError("a student needs at least 2 leaves and 1 round")
    teacher_dir = Path(teacher_dir)
    out_dir = Path(out_dir) if out_dir is not None else teacher_dir / STUDENT_DIR
    scorer = load_scorer(teacher_dir)
    horizons = tuple(scorer.horizons)
    datasets = build_datasets(series, horizons, 0.0, progress)
    # Every member's say: the sequence member on the window the stream holds at each row's candle.
    teacher_p = score_datasets(scorer, series, datasets)

    built = out_dir.with_name(f".{out_dir.name}-new-{uuid.uuid4().hex[:8]}")
    built.mkdir(parents=True)
    try:
        params = {**STUDENT_PARAMS, "num_leaves": num_leaves, "num_boost_round": num_boost_round,
                  "temperature": temperature, "alpha": alpha, "valid_fraction": valid_fraction}
        versions, metrics, n_train, n_valid, teacher_acc, valid_rows = {}, {}, {}, {}, {}, {}
        for h in horizons:
            ds = datasets[h]
            # The row index rides along as a last column, so the teacher's P(up) splits as the rows do.
            indexed = Dataset(np.column_stack([ds.X, np.arange(len(ds))]), ds.y, ds.meta, ds.feature_names, h)
            parts = time_split(indexed, valid_fraction)
            train, valid = (Dataset(d.X[:, :-1], d.y, d.meta, d.feature_names, h) for d in parts)
            train_i, valid_i = (d.X[:, -1].astype(np.int64) for d in parts)
            key = horizon_dir(h)
            teacher_acc[key] = float(((teacher_p[h][valid_i] >= 0.5) == valid.y).mean())
            booster = _train_student(train, soft_targets(teacher_p[h][train_i], train.y, temperature, alpha),
                                     num_leaves, num_boost_round)
            versions[key], metrics[key] = _write_student(h, booster, train, valid, built, scorer.version,
                                                         teacher_acc[key], temperature, alpha, params)
            n_train[key], n_valid[key], valid_rows[h] = len(train), len(valid), valid
            if h == horizons[0]:
                write_reference(built, train.X)
        config = BundleConfig(horizons=horizons, members={LGBM_MEMBER: versions}, strategy="weighted_average",
                              weights={LGBM_MEMBER: 1.0}, metrics=metrics)
        (built / BUNDLE_FILE).write_text(config.to_json())
        student = load_model(built, student=False)
        teacher = load_model(teacher_dir, student=False)
        student_acc = {}
        for j, h in enumerate(horizons):  # as served: the ONNX bundle, every horizon in one call
            valid = valid_rows[h]
            student_acc[horizon_dir(h)] = float(((student.score(valid.X).prob_up[:, j] >= 0.5) == valid.y).mean())
        sample = valid_rows[horizons[0]].X
        teacher_us, student_us = _costs([teacher, student], sample, timing_s)
        kept = {k: round(student_acc[k] / teacher_acc[k], 4) if teacher_acc[k] else float("nan") for k in student_acc}
        speed_up = {k: round(teacher_us[k] / student_us[k], 2) for k in teacher_us}
        report = DistillReport(
            str(out_dir), student.version, scorer.version, [m.name for m in getattr(teacher, "members", ())],
            list(horizons), {k: round(v, 4) for k, v in teacher_acc.items()},
            {k: round(v, 4) for k, v in student_acc.items()}, kept, teacher_us, student_us, speed_up,
            {"accuracy_kept": min(kept.values()) >= GOALS["accuracy_kept"],
             "speed_up": min(speed_up.values()) >= GOALS["speed_up"]},
            temperature, alpha, num_leaves, num_boost_round, n_train, n_valid, versions)
        (built / DISTILL_FILE).write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
        _replace_dir(built, out_dir)
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise
    return report


def distill(teacher_dir: str | Path, files: Sequence[str | Path], out_dir: str | Path | None = None,
            **options: Any) -> DistillReport:
    """:func:`distill_series` on candle files; ``options`` go to it."""
    if not files:
        raise ConfigError("distillation needs candle files")
    return distill_series(teacher_dir, read_series(files), out_dir, **options)
