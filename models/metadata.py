"""``model.json``: what an exported model is, written by ``training/`` and checked by ``models/`` at load.

One home for the format, so the writer and the reader cannot drift apart.

>>> meta = ModelMetadata(name="lgbm-direction", version="lgbm-h1-0123456789ab", horizon=1,
...     feature_names=("ret_1", "rsi_14"), onnx_sha256="0" * 64)
>>> ModelMetadata.from_json(meta.to_json()) == meta
True
>>> ModelMetadata.from_json('{"name": "x"}')
Traceback (most recent call last):
...
core.errors.ConfigError: model metadata lacks version, horizon, feature_names, onnx_sha256

``bundle.json`` describes an ensemble: which horizon models it holds, their versions, how to combine.

>>> cfg = BundleConfig(horizons=(1, 2), members={"lgbm": {"h1": "lgbm-h1-aaa", "h2": "lgbm-h2-bbb"}},
...     strategy="majority", weights={"lgbm": 1.0, "mamba": 2.0})
>>> BundleConfig.from_json(cfg.to_json()) == cfg
True
>>> BundleConfig.from_json('{"horizons": [1], "members": {}, "strategy": "loudest"}')
Traceback (most recent call last):
...
core.errors.ConfigError: bundle.json: unknown strategy 'loudest' (known: weighted_average, majority, unanimous)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError

__all__ = ["BUNDLE_FILE", "METADATA_FILE", "NATIVE_FILE", "ONNX_FILE", "LGBM_MEMBER", "STRATEGIES", "BundleConfig", "ExportProvenance",
           "ModelMetadata", "horizon_dir", "metadata_fields"]

METADATA_FILE = "model.json"
ONNX_FILE = "model.onnx"
NATIVE_FILE = "model.txt"  # LightGBM's own text of the trees model.onnx holds (models/compiled_trees.py)
BUNDLE_FILE = "bundle.json"
LGBM_MEMBER = "lgbm"  # the member name of the per-horizon LightGBM set in bundle.json
# The ensemble strategies models.ensemble implements; listed here so the file format can be checked
# without importing the ensemble (training writes this file and must not depend on serving code).
STRATEGIES = ("weighted_average", "majority", "unanimous")


def horizon_dir(horizon: int) -> str:
    """The sub-directory of a bundle that holds the LightGBM model of one horizon.

    >>> horizon_dir(3)
    'h3'
    """
    return f"h{horizon}"


def metadata_fields(cls: Any, text: str, what: str, tuple_fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields of dataclass ``cls`` from a JSON object: ConfigError (naming ``what``) for bad JSON or a
    missing required field; unknown keys are ignored on purpose (a newer trainer may add fields an
    older server does not use); ``tuple_fields`` come back as tuples (the dataclasses are frozen)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} must be a JSON object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in raw]
    if missing:
        raise ConfigError(f"{what} lacks {', '.join(missing)}")
    values = {k: v for k, v in raw.items() if k in fields}
    for name in tuple_fields:
        if name in values:
            values[name] = tuple(values[name])
    return values


@dataclass(frozen=True, kw_only=True)
class ExportProvenance:
    """What every exported model's ``model.json`` records besides its identity and inputs: the ONNX output
    and opset, the data it was trained on, its metrics and parameters, when (LightGBM's
    :class:`ModelMetadata`, the sequence model's :class:`models.mamba.metadata.MambaMetadata`)."""

    output_name: str = "probabilities"
    onnx_opset: int | None = None
    symbols: tuple[str, ...] = ()
    timeframes: tuple[str, ...] = ()
    training_range: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0
    created_at: str = ""

    def to_json(self) -> str:
        """``model.json``: every field, keys sorted."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class ModelMetadata(ExportProvenance):
    """Identity, inputs and provenance of one exported model.

    ``version`` is derived from the ONNX bytes, so the same model always has the same version and
    ``onnx_sha256`` lets the loader refuse a ``model.onnx`` that is not the one this file describes.
    """

    name: str
    version: str
    horizon: int
    feature_names: tuple[str, ...]
    onnx_sha256: str
    input_name: str = "input"
    lightgbm_version: str = ""
    # The digest of model.txt, the same trees in LightGBM's text format; empty: the model has none, and
    # runs on ONNX Runtime only. Not part of the version: the ONNX bytes define what is predicted.
    native_sha256: str = ""

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        """Parse ``model.json``; ConfigError if it is not JSON or lacks a required field."""
        values = metadata_fields(cls, text, "model metadata", ("feature_names", "symbols", "timeframes"))
        if not isinstance(values["horizon"], int) or values["horizon"] < 1:
            raise ConfigError(f"model metadata horizon must be a positive integer, got {values['horizon']!r}")
        return cls(**values)


@dataclass(frozen=True)
class BundleConfig:
    """The ensemble configuration a bundle directory carries next to its ``h<k>/`` model directories.

    ``members`` maps a member name to {``h<k>``: version} for the per-horizon models it was written with,
    so a loader can refuse a bundle whose directories were replaced without this file (or the reverse).
    ``weights`` may name members that are not in the directory yet (``mamba``): they join when present.
    """

    horizons: tuple[int, ...]
    members: dict[str, dict[str, str]]
    strategy: str = "weighted_average"
    weights: dict[str, float] = field(default_factory=dict)
    format: int = 1
    # Validation metrics of the ensemble per horizon ({"h1": {"accuracy": ...}}): what live accuracy is
    # compared with (models.profile). Not part of the version: they do not change a prediction.
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    # How the weights were chosen (training.default_bundle: each candidate's held-out figures). Not part of
    # the version either: a record of the training, not of what a prediction is.
    selection: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BundleConfig:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{BUNDLE_FILE} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or "horizons" not in raw or "members" not in raw:
            raise ConfigError(f"{BUNDLE_FILE} must be an object with horizons and members")
        if raw.get("strategy", "weighted_average") not in STRATEGIES:
            raise ConfigError(f"{BUNDLE_FILE}: unknown strategy {raw['strategy']!r} (known: {', '.join(STRATEGIES)})")
        horizons = tuple(raw["horizons"])
        if not horizons or not all(isinstance(h, int) and h >= 1 for h in horizons):
            raise ConfigError(f"{BUNDLE_FILE}: horizons must be positive integers, got {raw['horizons']!r}")
        weights = raw.get("weights") or {}
        if not all(isinstance(w, (int, float)) and w >= 0 for w in weights.values()):
            raise ConfigError(f"{BUNDLE_FILE}: weights must be non-negative numbers, got {weights!r}")
        metrics = raw.get("metrics") or {}
        if not isinstance(metrics, dict) or not all(isinstance(m, dict) for m in metrics.values()):
            raise ConfigError(f"{BUNDLE_FILE}: metrics must map h<k> to an object of numbers")
        return cls(horizons=horizons, members={k: dict(v) for k, v in raw["members"].items()},
                   strategy=raw.get("strategy", "weighted_average"),
                   weights={k: float(v) for k, v in weights.items()}, format=int(raw.get("format", 1)),
                   metrics={str(k): dict(v) for k, v in metrics.items()},
                   selection=dict(raw.get("selection") or {}))
