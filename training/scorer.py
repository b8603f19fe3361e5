"""A model directory or bundle loaded as evaluation, the registry and the retrain worker need it: P(up) per
horizon, and what the model was trained on (its metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from models.metadata import BUNDLE_FILE, METADATA_FILE, BundleConfig, ModelMetadata, horizon_dir

__all__ = ["Scorer", "load_scorer"]


@dataclass(frozen=True)
class Scorer:
    """A loaded model as evaluation needs it: P(up) per horizon and what it was trained on."""

    path: Path
    kind: str                      # "direction" | "bundle"
    name: str
    version: str
    horizons: tuple[int, ...]
    metadata: tuple[ModelMetadata, ...]
    model: Any                     # DirectionModel | ModelBundle
    notes: tuple[str, ...] = ()

    def predict(self, X: np.ndarray, horizon: int) -> np.ndarray:
        if self.kind == "bundle":
            return self.model.score(X).prob_up[:, self.horizons.index(horizon)]
        return self.model.predict_proba(X)


def load_scorer(model_dir: str | Path) -> Scorer:
    """A DirectionModel directory (``model.json``) or a bundle (``bundle.json``); ConfigError otherwise."""
    from models.bundle import SEQUENCE_DIR, ModelBundle
    from models.direction import DirectionModel

    path = Path(model_dir).resolve()
    if (path / BUNDLE_FILE).is_file():
        bundle = ModelBundle.load(path)
        config = BundleConfig.from_json((path / BUNDLE_FILE).read_text("utf-8"))
        metadata = tuple(ModelMetadata.from_json((path / horizon_dir(h) / METADATA_FILE).read_text("utf-8"))
                         for h in config.horizons)
        notes = ()
        if (path / SEQUENCE_DIR).is_dir():
            notes = (f"{SEQUENCE_DIR}/ is not scored: evaluation feeds feature rows, the LightGBM members only",)
        return Scorer(path, "bundle", metadata[0].name, bundle.version, tuple(bundle.horizons), metadata, bundle, notes)
    if (path / METADATA_FILE).is_file():
        model = DirectionModel.load(path)
        return Scorer(path, "direction", model.name, model.version, (model.horizon,), (model.metadata,), model)
    raise ConfigError(f"{model_dir}: neither a model directory ({METADATA_FILE}) nor a bundle ({BUNDLE_FILE})")
