"""The served Mamba model: P(up) at horizons 1..5 from the last 60 feature vectors of each series.

Two ways to run the same exported model: ``backend="onnx"`` (default; ONNX Runtime, one call per batch,
provider chosen as for the LightGBM model) or ``backend="torch"`` (the PyTorch weights, on mamba-ssm's
kernels when CUDA and mamba-ssm are there, else on the pure-PyTorch block). Loading checks what could
make the stream score garbage quietly: the files are the ones model.json describes (sha256) and the
feature order is the engine's ``FEATURE_NAMES``; anything off is a ConfigError at load.

Inputs are raw windows from ``FeatureState.window(60)``: shorter ones are left-padded with NaN
(models/mamba/windows.py) and NaN means "unknown" (normalised to 0 inside the model).

>>> import numpy as np
>>> from features import FEATURE_NAMES
>>> model = MambaModel.load(mamba_model_dir)   # a tiny model trained on the bundled candles (conftest)
>>> model.name, model.horizons, model.version.startswith("mamba-")
('mamba-direction', (1, 2, 3, 4, 5), True)
>>> p = model.predict_proba(np.zeros((3, 60, len(FEATURE_NAMES))))
>>> p.shape, bool(((0 < p) & (p < 1)).all())
((3, 5), True)
>>> warm = model.predict_proba([np.zeros((12, len(FEATURE_NAMES)))])   # 12 steps so far: padded
>>> warm.shape
(1, 5)
>>> MambaModel.load("no/such/dir")
Traceback (most recent call last):
...
core.errors.ConfigError: no/such/dir/model.json: Mamba model metadata not found
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.mamba.metadata import METADATA_FILE, ONNX_FILE, WEIGHTS_FILE, MambaMetadata
from models.direction import read_model_file as _read
from models.mamba.windows import pad_windows
from core.errors import ConfigError

__all__ = ["MambaModel"]

log = logging.getLogger(__name__)


def _check_bytes(data: bytes, expected: str, path: Path) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ConfigError(f"{path}: content does not match {METADATA_FILE} (sha256 {digest[:12]}, "
                          f"expected {expected[:12]}); corrupt or from another export")


def _check_features(model_features: Sequence[str], where: Path) -> None:
    from features import FEATURE_NAMES

    if tuple(model_features) != tuple(FEATURE_NAMES):
        missing = [n for n in FEATURE_NAMES if n not in model_features]
        extra = [n for n in model_features if n not in FEATURE_NAMES]
        detail = f"missing {missing}, unknown {extra}" if missing or extra else "same names, different order"
        raise ConfigError(f"{where}: the Mamba model was trained on other features than features "
                          f"computes ({detail}); retrain it with the current feature engine")


class _OnnxRunner:
    def __init__(self, onnx_bytes: bytes, meta: MambaMetadata, providers, intra_op_threads: int) -> None:
        from models.onnx_session import create_session

        self.session, self.provider = create_session(onnx_bytes, providers, intra_op_threads)
        if meta.input_name not in {i.name for i in self.session.get_inputs()}:
            raise ConfigError(f"ONNX graph has no input {meta.input_name!r}")
        self._input, self._outputs = meta.input_name, [meta.output_name]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self._outputs, {self._input: x})[0]


class _TorchRunner:
    def __init__(self, weights: bytes, meta: MambaMetadata, where: Path) -> None:
        import torch

        from models.mamba.backend import select_backend
        from models.mamba.classifier import MambaClassifier, MambaConfig

        self._torch = torch
        backend = select_backend()
        self.model = MambaClassifier(MambaConfig.from_dict(meta.config), backend=backend)
        try:
            # weights_only: a model file must not be able to run code when loaded.
            state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - unpickling, shape and key errors alike mean a bad file
            raise ConfigError(f"{where}: cannot load the Mamba weights: {exc}") from None
        self.device = "cuda" if backend == "mamba_ssm" else "cpu"
        self.model.to(self.device).eval()
        self.provider = f"torch-{backend}-{self.device}"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            return self.model(self._torch.from_numpy(x).to(self.device)).cpu().numpy()


class MambaModel:
    """An exported Mamba direction classifier, ready to score windows. Build it with :meth:`load`."""

    def __init__(self, metadata: MambaMetadata, runner, backend: str) -> None:
        self.metadata = metadata
        self.backend = backend
        self.provider = runner.provider
        self._run = runner

    @classmethod
    def load(cls, model_dir: str | Path, providers: Sequence[str] | str | None = None, backend: str = "onnx",
             intra_op_threads: int = 1) -> MambaModel:
        """Load ``model_dir`` (model.json, model.onnx, weights.pt); ConfigError if anything is off.

        ``backend``: ``"onnx"`` (``providers`` as in :func:`models.onnx_session.create_session`) or
        ``"torch"`` (thread count: the process's ``torch.set_num_threads``).
        """
        model_dir = Path(model_dir)
        if backend not in ("onnx", "torch"):
            raise ConfigError(f"unknown Mamba serving backend {backend!r} (use onnx or torch)")
        meta_bytes = _read(model_dir / METADATA_FILE, "Mamba model metadata")
        metadata = MambaMetadata.from_json(meta_bytes.decode("utf-8", "replace"))
        if metadata.window != metadata.config.get("window", metadata.window):
            raise ConfigError(f"{model_dir / METADATA_FILE}: window and config.window disagree")
        _check_features(metadata.feature_names, model_dir)
        if backend == "onnx":
            data = _read(model_dir / ONNX_FILE, "ONNX model")
            _check_bytes(data, metadata.onnx_sha256, model_dir / ONNX_FILE)
            runner = _OnnxRunner(data, metadata, providers, intra_op_threads)
        else:
            data = _read(model_dir / WEIGHTS_FILE, "Mamba weights")
            _check_bytes(data, metadata.weights_sha256, model_dir / WEIGHTS_FILE)
            runner = _TorchRunner(data, metadata, model_dir)
        model = cls(metadata, runner, backend)
        # Warm-up: the first run allocates ORT's arenas (or torch's buffers); a candle must not pay for it.
        model.predict_proba(np.zeros((1, metadata.window, len(metadata.feature_names)), dtype=np.float32))
        log.info("model %s %s loaded (%s on %s)", metadata.name, metadata.version, backend, runner.provider)
        return model

    name = property(lambda self: self.metadata.name)
    version = property(lambda self: self.metadata.version)
    horizons = property(lambda self: self.metadata.horizons)
    window = property(lambda self: self.metadata.window)
    feature_names = property(lambda self: self.metadata.feature_names)

    def predict_proba(self, windows: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """P(up) per window and horizon, shape (n, len(horizons)), in one call for the whole batch.

        ``windows``: (n, k, n_features) or a sequence of (k_i, n_features) arrays, oldest step first;
        k < window is left-padded with NaN, k > window keeps the last ``window`` steps.
        """
        x = pad_windows(windows, self.window, len(self.feature_names))
        if not len(x):
            return np.empty((0, len(self.horizons)))
        return np.asarray(self._run(x), dtype=np.float64)

    def predict_proba_one(self, window: np.ndarray) -> np.ndarray:
        """P(up) per horizon for one window (k, n_features); for many use :meth:`predict_proba`."""
        return self.predict_proba(np.asarray(window)[None])[0]

    def __repr__(self) -> str:
        return (f"MambaModel({self.name!r}, version={self.version!r}, backend={self.backend!r}, "
                f"provider={self.provider!r})")
