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

The device (``load(dir, device=)``): ``"auto"`` (default) is CUDA when ``torch.cuda.is_available()``, else
the CPU. On the CPU the pure-PyTorch block steps (``MambaBlock.step``). On CUDA the same weights run on
mamba-ssm's ``Mamba`` block (``Mamba.step``: its ``selective_state_update`` and ``causal_conv1d_update``
kernels) when ``models.mamba.backend`` finds them usable, else on the pure-PyTorch block moved to the GPU.
Rows and states stay numpy in and out, in the same state layout on every device, so a series' state moves
between them. Under ``"auto"`` a CUDA path that fails to load (or to take a first step) is logged as a
warning and the CPU serves; ``provider`` says what runs (``torch-cpu-step``,
``torch-cuda-step (mamba-ssm kernels)``, ``torch-cuda-step (PyTorch block)``, or the CPU with the
fallback's reason).

>>> import numpy as np
>>> rec = MambaRecurrent.load(mamba_model_dir)   # the tiny doctest model (tests/doctest_models.py)
>>> state = rec.initial_state(3)
>>> p, state = rec.step(np.zeros((3, 41)), state)
>>> p.shape, state.shape == (3, rec.state_size), state.dtype
((3, 5), True, dtype('float32'))
>>> MambaRecurrent.load(mamba_model_dir, device="cpu").provider
'torch-cpu-step'
"""

from __future__ import annotations

import copy
import io
import logging
import re
from pathlib import Path

import numpy as np

from models.direction import read_model_file as _read
from models.mamba.metadata import METADATA_FILE, WEIGHTS_FILE, MambaMetadata
from models.mamba.stepper import MambaStepper
from core.errors import ConfigError

__all__ = ["CPU_PROVIDER", "DEVICES", "MambaRecurrent"]

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")  # and "cuda:N"
CPU_PROVIDER = "torch-cpu-step"
_BLOCKS = {"mamba_ssm": "mamba-ssm kernels", "torch": "PyTorch block"}


def _check_device(device: str) -> str:
    if not isinstance(device, str) or not (device in DEVICES or re.fullmatch(r"cuda:\d+", device)):
        raise ConfigError(f"unknown Mamba step device {device!r} (use one of: {', '.join(DEVICES)}, or cuda:N)")
    return device


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def _move(model, device: str):
    """``model`` on ``device`` (a function of its own: the fallback test makes it fail)."""
    return model.to(device)


def _step_any_block(model, x, state):
    """:meth:`MambaClassifier.step` for a classifier on either block kind: the pure-PyTorch ``MambaBlock.step``
    or mamba-ssm's ``Mamba.step``, which takes and gives (b, 1, d_model) and updates the states in place (they
    are copied first: the caller's states are never modified). -> (P(up), new states)."""
    import torch

    from models.mamba.block import MambaBlock

    h = model.input_proj(model.normalise(x))
    new_state = []
    for norm, layer, (conv, ssm) in zip(model.norms, model.layers, state):
        if isinstance(layer, MambaBlock):
            out, conv, ssm = layer.step(norm(h), conv, ssm)
        else:
            conv = conv.clone(memory_format=torch.contiguous_format)
            ssm = ssm.clone(memory_format=torch.contiguous_format)
            out, conv, ssm = layer.step(norm(h).unsqueeze(1), conv, ssm)
            out = out.squeeze(1)
        h = h + out
        new_state.append((conv, ssm))
    return torch.sigmoid(model.head(model.dropout(model.norm_f(h)))), new_state


class MambaRecurrent(MambaStepper):
    """Step mode of a trained Mamba classifier (module docstring) on the CPU or a CUDA device.

    ``classifier``: the pure-PyTorch classifier on the CPU, or one already on ``device`` (either block
    kind); build it with :meth:`load`."""

    def __init__(self, classifier, metadata: MambaMetadata, device: str = "cpu", provider: str | None = None) -> None:
        import torch

        from models.mamba.block import MambaBlock

        self._torch = torch
        self.model = classifier.eval()
        self.metadata = metadata
        self.device = device
        layers = list(classifier.layers)
        self._shapes = [(layer.d_inner, layer.d_conv, layer.d_state) for layer in layers]
        self.state_size = sum(d * (k + n) for d, k, n in self._shapes)
        kernels = not all(isinstance(layer, MambaBlock) for layer in layers)
        # The CPU with the pure-PyTorch block: the portable path, numpy memory shared with torch, no copies.
        self._portable = device == "cpu" and not kernels
        if not self._portable:
            self.series_per_call = None  # one call per batch: a device call's fixed cost is what to save
        where = "cpu" if device == "cpu" else "cuda"
        self.provider = provider or (CPU_PROVIDER if self._portable else
                                     f"torch-{where}-step ({_BLOCKS['mamba_ssm' if kernels else 'torch']})")
        self._device_step = _step_any_block if kernels else type(classifier).step

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto", backend: str | None = None) -> "MambaRecurrent":
        """The weights of an exported model directory (``weights.pt``, checked against model.json), on ``device``.

        ``device``: ``"auto"`` (CUDA when available, else CPU; a failing CUDA path falls back to the CPU with a
        warning), ``"cpu"``, or ``"cuda"``/``"cuda:N"`` (failing there is a ConfigError: it was asked for).
        ``backend``, on CUDA: ``"mamba_ssm"`` or ``"torch"`` (the block); by default mamba-ssm's kernels when
        ``models.mamba.backend`` finds them usable, else the pure-PyTorch block (also when the kernels fail).
        """
        import hashlib

        import torch

        from models.mamba.classifier import MambaClassifier, MambaConfig

        _check_device(device)
        if backend is not None and backend not in _BLOCKS:
            raise ConfigError(f"unknown Mamba backend {backend!r} (use one of: {', '.join(_BLOCKS)})")
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
        fallback = device == "auto"
        if fallback:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            if backend == "mamba_ssm":
                raise ConfigError("Mamba backend mamba_ssm runs on CUDA only, and the step's device is the CPU")
            return cls(classifier, metadata)
        return cls._on_cuda(classifier, metadata, device, backend, fallback)

    @classmethod
    def _on_cuda(cls, classifier, metadata: MambaMetadata, device: str, backend: str | None,
                 fallback: bool) -> "MambaRecurrent":
        """``classifier``'s weights (CPU, pure-PyTorch block; left as it is) on ``device``, warmed up with one
        step. Without an asked ``backend``: mamba-ssm's kernels when usable, the PyTorch block when they are not
        or fail. A failure of the PyTorch block too: the CPU with a warning (``fallback``), else ConfigError."""
        from models.mamba.backend import mamba_ssm_status

        usable, reason = mamba_ssm_status()
        blocks = [backend] if backend is not None else (["mamba_ssm", "torch"] if usable else ["torch"])
        failures = []
        for block in blocks:
            try:
                rec = cls._built(classifier, metadata, device, block)
                if failures:  # the kernels failed here: say so where the provider is shown (/models)
                    rec.provider = f"torch-cuda-step ({_BLOCKS[block]}; mamba-ssm kernels failed: {failures[-1]})"
                why = f" (mamba-ssm not used: {reason})" if block == "torch" and not usable and backend is None else ""
                log.info("Mamba step on %s: %s%s", device, rec.provider, why)
                return rec
            except Exception as exc:  # noqa: BLE001 - any CUDA, kernel or triton failure: the next path
                failures.append(_one_line(exc))
                if backend is None and block == "mamba_ssm":
                    log.warning("Mamba step: mamba-ssm's kernels failed on %s (%s); the PyTorch block on %s instead",
                                device, failures[-1], device)
        if not fallback:
            raise ConfigError(f"Mamba step on {device} ({_BLOCKS[blocks[-1]]}) failed: {failures[-1]}")
        log.warning("Mamba step: CUDA failed (%s); stepping on the CPU instead", failures[-1])
        return cls(classifier, metadata, provider=f"{CPU_PROVIDER} (CUDA failed: {failures[-1]})")

    @classmethod
    def _built(cls, classifier, metadata: MambaMetadata, device: str, block: str) -> "MambaRecurrent":
        from models.mamba.classifier import MambaClassifier

        # A classifier of that block kind with the same state_dict (the parameter names are mamba-ssm's:
        # models/mamba/block.py), a new one: the CPU one stays intact for a fallback.
        if block == "torch":
            model = copy.deepcopy(classifier)
        else:
            model = MambaClassifier(classifier.config, backend=block)
            model.load_state_dict(classifier.state_dict(), strict=True)
        rec = cls(_move(model, device), metadata, device)
        # The first step compiles and loads the kernels: a failure belongs to loading, not to the first candle.
        rec.step(np.zeros((1, len(metadata.feature_names)), dtype=np.float32), rec.initial_state(1))
        return rec

    def _unpack(self, flat: np.ndarray) -> list:
        torch, out, at = self._torch, [], 0
        tensor = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32))
        if not self._portable:
            tensor = tensor.to(self.device)  # a copy on CUDA (and _step_any_block clones before mamba-ssm writes)
        for d, k, n in self._shapes:
            conv = tensor[:, at:at + d * k].reshape(-1, d, k)
            at += d * k
            ssm = tensor[:, at:at + d * n].reshape(-1, d, n)
            at += d * n
            out.append((conv, ssm))
        return out

    def step(self, rows: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`MambaStepper.step`, on the CPU in calls of CPU_STEP_ROWS series; on CUDA in one call."""
        if self._portable:
            return super().step(rows, state)
        rows = self._checked(rows, state)
        if not len(rows):
            return np.empty((0, len(self.horizons))), state.copy()
        return self._step_on_device(rows, state)

    def _step_rows(self, rows: np.ndarray, state: np.ndarray, new: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            q, layers = self.model.step(torch.from_numpy(rows), self._unpack(state))
            torch.cat([part.reshape(part.shape[0], -1) for layer in layers for part in layer], dim=1,
                      out=torch.from_numpy(new))
            return q.numpy()

    def _step_on_device(self, rows: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`step` on CUDA: rows and states copied to the device, P(up) and the new states back."""
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(rows)).to(self.device)
            p, new = self._device_step(self.model, x, self._unpack(state))
            packed = torch.cat([part.reshape(part.shape[0], -1) for layer in new for part in layer], dim=1)
            return p.cpu().numpy().astype(np.float64), packed.cpu().numpy()

    def __repr__(self) -> str:
        return f"MambaRecurrent({self.name!r}, version={self.version!r}, provider={self.provider!r})"
