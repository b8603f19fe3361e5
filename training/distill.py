"""Knowledge distillation: a shallow LightGBM student trained on the ensemble's soft targets.

The student learns ``alpha * hard label + (1 - alpha) * sigmoid(logit(p_teacher) / T)`` with LightGBM's
cross-entropy objective (which takes labels in [0, 1]); the temperature ``T`` > 1 softens the teacher's
probabilities so the student also learns how sure the teacher is. It is exported like any direction
model (ONNX + ``model.json``, parity-checked), so a worker can serve it, and the report says how much
accuracy it keeps (student / teacher on the same validation rows) and how much faster it scores.

>>> soft_targets(np.array([0.9, 0.5]), np.array([1, 0]), temperature=2.0, alpha=0.5).round(4).tolist()
[0.875, 0.25]
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import lightgbm as lgb
import numpy as np

from training.dataset import build_dataset, time_split
from training.train import LGBM_PARAMS, read_series

__all__ = ["DistillReport", "distill", "soft_targets", "STUDENT_PARAMS"]

# Shallow on purpose: the student exists to be fast.
STUDENT_PARAMS: dict[str, Any] = {**LGBM_PARAMS, "objective": "cross_entropy", "num_leaves": 7, "min_data_in_leaf": 200}


def soft_targets(teacher_p: np.ndarray, hard: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """The blend of hard labels and the teacher's temperature-softened probabilities."""
    p = np.clip(np.asarray(teacher_p, dtype=np.float64), 1e-6, 1 - 1e-6)
    softened = 1.0 / (1.0 + np.exp(-np.log(p / (1.0 - p)) / temperature))
    return alpha * np.asarray(hard, dtype=np.float64) + (1.0 - alpha) * softened


@dataclass(frozen=True)
class DistillReport:
    version: str
    teacher_version: str
    teacher_accuracy: float
    student_accuracy: float
    accuracy_preservation: float  # student / teacher
    teacher_us_per_row: dict[str, float]
    student_us_per_row: dict[str, float]
    speed_up: dict[str, float]
    temperature: float
    alpha: float
    n_train: int
    n_valid: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _us_per_row(predict: Any, X: np.ndarray, batch: int, repeats: int = 30) -> float:
    rows = np.ascontiguousarray(X[:batch])
    predict(rows)  # warm
    started = time.perf_counter()
    for _ in range(repeats):
        predict(rows)
    return (time.perf_counter() - started) / repeats / len(rows) * 1e6


def distill(teacher_dir: str | Path, files: Sequence[str | Path], out_dir: str | Path, *, temperature: float = 2.0,
            alpha: float = 0.5, num_boost_round: int = 60, progress: bool = True) -> DistillReport:
    """Train, export and measure the student of the model (or bundle) in ``teacher_dir``."""
    from models.direction import DirectionModel
    from models.loading import load_model
    from models.metadata import METADATA_FILE, ONNX_FILE, ModelMetadata
    from training.export import INPUT_NAME, OUTPUT_NAME, check_parity, float32_thresholds, onnx_opset, to_onnx
    from training.metrics import direction_metrics

    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError("temperature must be > 0 and alpha within 0..1")
    teacher = load_model(teacher_dir)
    train, valid = time_split(build_dataset(read_series(files), 1, 0.0, progress))
    targets = soft_targets(teacher.predict_proba(train.X), train.y, temperature, alpha)
    booster = lgb.train(STUDENT_PARAMS, lgb.Dataset(train.X.astype(np.float32).astype(np.float64), targets,
                                                    feature_name=list(train.feature_names)),
                        num_boost_round=num_boost_round)
    # cross_entropy and binary share the sigmoid link: relabel so the ONNX converter knows the tree set.
    relabelled = (booster.model_to_string().replace("objective=cross_entropy", "objective=binary sigmoid:1")
                  .replace("[objective: cross_entropy]", "[objective: binary]"))
    booster = lgb.Booster(model_str=relabelled)
    booster = float32_thresholds(booster)
    onnx_model = to_onnx(booster, len(train.feature_names), graph_name="lgbm-student-h1")
    onnx_bytes = onnx_model.SerializeToString()
    check_parity(onnx_bytes, booster, valid.X)
    version = f"student-h1-{hashlib.sha256(onnx_bytes).hexdigest()[:12]}"

    teacher_p = teacher.predict_proba(valid.X)
    student_p = booster.predict(valid.X.astype(np.float32).astype(np.float64))
    teacher_acc = float(((teacher_p >= 0.5) == valid.y).mean())
    student_acc = float(((student_p >= 0.5) == valid.y).mean())
    metadata = ModelMetadata(
        name="lgbm-student", version=version, horizon=1, feature_names=train.feature_names,
        onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(), input_name=INPUT_NAME, output_name=OUTPUT_NAME,
        onnx_opset=onnx_opset(onnx_model), symbols=tuple(dict.fromkeys(train.meta.symbol.tolist())),
        metrics={**direction_metrics(valid.y, student_p, valid.meta.last_return), "teacher": teacher.version,
                 "teacher_accuracy": teacher_acc, "temperature": temperature, "alpha": alpha},
        params={**STUDENT_PARAMS, "num_boost_round": num_boost_round}, n_train=len(train), n_valid=len(valid),
        lightgbm_version=lgb.__version__)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ONNX_FILE).write_bytes(onnx_bytes)
    (out_dir / METADATA_FILE).write_text(metadata.to_json())

    student = DirectionModel.load(out_dir)
    teacher_us = {f"batch_{b}": _us_per_row(teacher.predict_proba, valid.X, b) for b in (1, 64)}
    student_us = {f"batch_{b}": _us_per_row(student.predict_proba, valid.X, b) for b in (1, 64)}
    return DistillReport(version, teacher.version, teacher_acc, student_acc,
                         student_acc / teacher_acc if teacher_acc else float("nan"),
                         {k: round(v, 2) for k, v in teacher_us.items()}, {k: round(v, 2) for k, v in student_us.items()},
                         {k: round(teacher_us[k] / student_us[k], 2) for k in teacher_us}, temperature, alpha,
                         len(train), len(valid))
