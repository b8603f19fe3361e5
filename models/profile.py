"""What a model was trained on, kept with it so that a serving worker can tell when the market moved away.

A :class:`TrainingProfile` holds the validation accuracy per horizon (from ``model.json``'s metrics, or
``bundle.json``'s for an ensemble) and a reference sample of the training features
(``reference.npy``: at most :data:`REFERENCE_ROWS` rows of the training matrix, evenly spaced in time,
float32, in the feature order of ``features``). The drift watches of :mod:`learning.retrain`
compare live accuracy with the first and live features with the second (a KS test per feature).

``reference.npy`` is read with ``allow_pickle=False``: a model directory may come from anywhere.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_reference(d, np.arange(41 * 3000, dtype=np.float64).reshape(3000, 41)).shape
(1000, 41)
>>> read_reference(d).dtype, float(read_reference(d)[1, 0])   # every third training row
(dtype('float32'), 123.0)
>>> profile = TrainingProfile({1: 0.61, 3: 0.58}, read_reference(d))
>>> profile.accuracy_at(3), profile.accuracy_at(2), TrainingProfile({}).armed
(0.58, None, False)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from features.names import N_FEATURES

__all__ = ["REFERENCE_FILE", "REFERENCE_ROWS", "TrainingProfile", "accuracy_by_horizon", "read_reference",
           "write_reference"]

REFERENCE_FILE = "reference.npy"
REFERENCE_ROWS = 1000  # what the KS test keeps of it (learning.features_drift); 164 KB as float32


@dataclass(frozen=True)
class TrainingProfile:
    """Training accuracy per horizon and the reference features (None: the model came without them)."""

    accuracy: Mapping[int, float] = field(default_factory=dict)
    reference: np.ndarray | None = None

    @property
    def armed(self) -> bool:
        """True if there is anything to compare live outcomes with."""
        return bool(self.accuracy)

    def accuracy_at(self, horizon: int) -> float | None:
        return self.accuracy.get(horizon)


def accuracy_by_horizon(metrics_by_horizon: Mapping[int, Mapping[str, Any]]) -> dict[int, float]:
    """{horizon: accuracy} of the horizons whose metrics have a finite accuracy."""
    out = {}
    for h, metrics in metrics_by_horizon.items():
        value = metrics.get("accuracy") if isinstance(metrics, Mapping) else None
        if isinstance(value, (int, float)) and np.isfinite(value) and 0.0 < value <= 1.0:
            out[int(h)] = float(value)
    return out


def write_reference(model_dir: str | Path, features: np.ndarray, rows: int = REFERENCE_ROWS) -> np.ndarray:
    """Keep ``rows`` rows of the training matrix ``features``, evenly spaced, as ``model_dir/reference.npy``."""
    X = np.asarray(features)
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise ValueError(f"reference features must be (rows, {N_FEATURES}), got {X.shape}")
    if len(X) > rows:
        X = X[np.linspace(0, len(X) - 1, rows).round().astype(int)]
    sample = np.ascontiguousarray(X, dtype=np.float32)
    path = Path(model_dir) / REFERENCE_FILE
    partial = path.with_suffix(".npy.partial")
    with open(partial, "wb") as f:
        np.save(f, sample, allow_pickle=False)
    os.replace(partial, path)
    return sample


def read_reference(model_dir: str | Path) -> np.ndarray | None:
    """The reference sample of ``model_dir`` (None if it has none); ConfigError for a file that is not one."""
    path = Path(model_dir) / REFERENCE_FILE
    if not path.exists():
        return None
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ConfigError(f"{path}: not a feature reference ({exc})") from None
    if X.ndim != 2 or X.shape[1] != N_FEATURES or X.dtype != np.float32 or len(X) > 10 * REFERENCE_ROWS:
        raise ConfigError(f"{path}: a feature reference is (rows <= {10 * REFERENCE_ROWS}, {N_FEATURES}) float32, "
                          f"got {X.shape} {X.dtype}")
    return X
