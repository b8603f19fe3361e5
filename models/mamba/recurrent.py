"""The Mamba model in recurrent step mode: one feature vector per series and candle, O(1) per candle.

A window pass reads the last 60 feature vectors of a series for every candle: 60 scan steps of work per
prediction. Step mode keeps each series' state instead — per layer, the last ``d_conv`` inputs of the
causal convolution and the scan's ``h`` (mamba-ssm's ``InferenceParams`` / ``Mamba.step`` semantics) —
and advances it by one step per candle. All the series of a batch go through one call; the state is a
flat float32 vector per series (``state_size`` values), which the caller stores with the series.

From the zero state, the step after a window's last vector equals the window forward
(``tests/models/test_mamba_step.py``: to 1e-5 on real windows). Started at a series' first candle, the
state carries the whole history, not the last 60 candles: the scan's memory fades (``exp(delta A) < 1``),
but the two agree only where the window reaches back past that memory.

>>> import numpy as np
>>> rec = MambaRecurrent.load(mamba_model_dir)   # the tiny doctest model (models/mamba/conftest.py)
>>> state = rec.initial_state(3)
>>> p, state = rec.step(np.zeros((3, 41)), state)
>>> p.shape, state.shape == (3, rec.state_size), state.dtype
((3, 5), True, dtype('float32'))
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from models.direction import read_model_file as _read
from models.mamba.metadata import METADATA_FILE, WEIGHTS_FILE, MambaMetadata
from core.errors import ConfigError

__all__ = ["MambaRecurrent"]


class MambaRecurrent:
    """Step mode of a trained Mamba classifier (module docstring), on the pure-PyTorch block, CPU."""

    def __init__(self, classifier, metadata: MambaMetadata) -> None:
        import torch

        self._torch = torch
        self.model = classifier.eval()
        self.metadata = metadata
        layers = list(classifier.layers)
        self._shapes = [(layer.d_inner, layer.d_conv, layer.d_state) for layer in layers]
        self.state_size = sum(d * (k + n) for d, k, n in self._shapes)

    @classmethod
    def load(cls, model_dir: str | Path) -> "MambaRecurrent":
        """The weights of an exported model directory (``weights.pt``, checked against model.json)."""
        import hashlib

        import torch

        from models.mamba.classifier import MambaClassifier, MambaConfig

        model_dir = Path(model_dir)
        metadata = MambaMetadata.from_json(_read(model_dir / METADATA_FILE, "Mamba model metadata").decode("utf-8", "replace"))
        data = _read(model_dir / WEIGHTS_FILE, "Mamba weights")
        if hashlib.sha256(data).hexdigest() != metadata.weights_sha256:
            raise ConfigError(f"{model_dir / WEIGHTS_FILE}: content does not match {METADATA_FILE}")
        classifier = MambaClassifier(MambaConfig.from_dict(metadata.config), backend="torch")
        try:
            # weights_only: a model file must not be able to run code when loaded.
            classifier.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
        except Exception as exc:  # noqa: BLE001 - unpickling, shape and key errors alike mean a bad file
            raise ConfigError(f"{model_dir}: cannot load the Mamba weights: {exc}") from None
        return cls(classifier, metadata)

    version = property(lambda self: self.metadata.version)
    name = property(lambda self: self.metadata.name)
    horizons = property(lambda self: self.metadata.horizons)
    feature_names = property(lambda self: self.metadata.feature_names)
    provider = "torch-cpu-step"

    def initial_state(self, n: int) -> np.ndarray:
        """The state of ``n`` series that have seen no candle."""
        return np.zeros((n, self.state_size), dtype=np.float32)

    def _unpack(self, flat: np.ndarray) -> list:
        torch, out, at = self._torch, [], 0
        tensor = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32))
        for d, k, n in self._shapes:
            conv = tensor[:, at:at + d * k].reshape(-1, d, k)
            at += d * k
            ssm = tensor[:, at:at + d * n].reshape(-1, d, n)
            at += d * n
            out.append((conv, ssm))
        return out

    def _pack(self, state: list) -> np.ndarray:
        return self._torch.cat([part.reshape(part.shape[0], -1) for layer in state for part in layer], dim=1).numpy()

    def step(self, rows: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One candle for each of ``n`` series: raw feature rows (n, n_features), NaN where unknown, and
        their states (n, ``state_size``) -> (P(up) per horizon (n, horizons) float64, the new states).
        ``state`` is not modified."""
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != len(self.metadata.feature_names) or state.shape != (len(rows), self.state_size):
            raise ValueError(f"step takes (n, {len(self.metadata.feature_names)}) rows and (n, {self.state_size}) "
                             f"states, got {rows.shape} and {state.shape}")
        if not len(rows):
            return np.empty((0, len(self.horizons))), state.copy()
        with self._torch.inference_mode():
            p, new = self.model.step(self._torch.from_numpy(rows), self._unpack(state))
            return p.numpy().astype(np.float64), self._pack(new)
