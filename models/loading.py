"""Load whatever a model directory holds: a bundle (``bundle.json``: every horizon, ensemble, optional
Mamba) or a single-horizon LightGBM model (``model.json`` + ``model.onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from models.metadata import BUNDLE_FILE, METADATA_FILE
from core.errors import ConfigError

if TYPE_CHECKING:
    from models.base import ServableModel

__all__ = ["load_model"]


def _sequence_loader(providers: Sequence[str] | str | None, intra_op_threads: int) -> Any:
    def load(path: Path) -> Any:
        # Step mode: one scan step per candle with a state per series, ~85x cheaper than a 60-step
        # window pass (models/mamba/recurrent.py; the ONNX window model stays for offline use).
        from models.mamba.recurrent import MambaRecurrent

        return MambaRecurrent.load(path)

    return load


def load_model(model_dir: str | Path, providers: Sequence[str] | str | None = None,
               intra_op_threads: int = 1) -> ServableModel:
    """A ready, warmed-up :class:`~models.base.ServableModel` for ``model_dir`` (a bundle or a single
    LightGBM, served as a one-member ensemble); ConfigError when it holds no usable model."""
    from models.bundle import ModelBundle
    from models.direction import DirectionModel

    model_dir = Path(model_dir)
    if (model_dir / BUNDLE_FILE).exists():
        return ModelBundle.load(model_dir, providers, intra_op_threads,
                                sequence_loader=_sequence_loader(providers, intra_op_threads))
    if (model_dir / METADATA_FILE).exists():
        return DirectionModel.load(model_dir, providers, intra_op_threads)
    raise ConfigError(f"{model_dir}: no model here (neither {BUNDLE_FILE} nor {METADATA_FILE}); "
                      "train one with `candleflow train`")
