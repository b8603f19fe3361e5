"""``model.json`` of an exported Mamba model: one home for the format its writer and loader share.

It differs from :class:`models.metadata.ModelMetadata` (one horizon, LightGBM) in what a sequence model
needs: several horizons, the window length, the architecture to rebuild the PyTorch path, and the
normalisation, padding and NaN rules.

>>> meta = MambaMetadata(name="mamba-direction", version="mamba-0123456789ab", feature_names=("a", "b"),
...     horizons=(1, 2), window=60, onnx_sha256="0" * 64, weights_sha256="1" * 64,
...     config={"d_model": 32}, normalisation={"mean": [0.0, 0.0], "std": [1.0, 1.0]})
>>> MambaMetadata.from_json(meta.to_json()) == meta
True
>>> MambaMetadata.from_json('{"name": "mamba-direction"}')
Traceback (most recent call last):
...
core.errors.ConfigError: Mamba model metadata lacks version, feature_names, horizons, window, onnx_sha256, weights_sha256, config, normalisation
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.metadata import ExportProvenance, metadata_fields
from core.errors import ConfigError

__all__ = ["ARRAYS_FILE", "METADATA_FILE", "MODEL_NAME", "ONNX_FILE", "WEIGHTS_FILE", "MambaMetadata", "mamba_version"]

MODEL_NAME = "mamba-direction"
METADATA_FILE = "model.json"
ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "weights.pt"  # the PyTorch state_dict: the torch path, and mamba-ssm on a GPU
ARRAYS_FILE = "weights.npz"  # the same weights as float32 arrays: the CPU step without PyTorch (numpy_step.py)


def mamba_version(onnx_sha256: str) -> str:
    """Deterministic version from the ONNX bytes' sha256: same model, same version.

    >>> mamba_version("c1650a9961b2" + "0" * 52)
    'mamba-c1650a9961b2'
    """
    return f"mamba-{onnx_sha256[:12]}"


@dataclass(frozen=True)
class MambaMetadata(ExportProvenance):
    """Identity, inputs, rules and provenance of one exported Mamba model (the provenance fields shared
    with LightGBM's: :class:`models.metadata.ExportProvenance`)."""

    name: str
    version: str
    feature_names: tuple[str, ...]
    horizons: tuple[int, ...]
    window: int
    onnx_sha256: str
    weights_sha256: str
    config: dict[str, Any]
    normalisation: dict[str, Any]
    input_name: str = "windows"
    n_test: int = 0
    torch_version: str = ""
    arrays_sha256: str = ""  # of ARRAYS_FILE; empty in models exported before it (the PyTorch step serves them)

    @classmethod
    def from_json(cls, text: str) -> MambaMetadata:
        """Parse ``model.json``; ConfigError if it is not JSON or lacks a required field."""
        values = metadata_fields(cls, text, "Mamba model metadata", ("feature_names", "horizons", "symbols", "timeframes"))
        if not values["horizons"] or not all(isinstance(h, int) and h >= 1 for h in values["horizons"]):
            raise ConfigError(f"Mamba model metadata horizons must be positive integers, got {values['horizons']!r}")
        if not isinstance(values["window"], int) or values["window"] < 1:
            raise ConfigError(f"Mamba model metadata window must be a positive integer, got {values['window']!r}")
        return cls(**values)
