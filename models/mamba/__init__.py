"""The Mamba sequence model: a small state-space classifier over the last 60 feature vectors of a series.

- :class:`MambaModel` (``model.py``): the served model, ONNX Runtime (default) or PyTorch.
- :class:`MambaClassifier`, :class:`MambaConfig` (``classifier.py``): the network.
- :class:`MambaBlock` (``block.py``): mamba-ssm's block in pure PyTorch, same parameters.
- :func:`select_backend` (``backend.py``): mamba-ssm's CUDA kernels when usable, else the PyTorch block.
- :func:`pad_windows` (``windows.py``): the warm-up padding rule. Training: ``training/mamba.py``.
  docs/mamba.md describes the whole.

Names are imported on first use: serving with ONNX Runtime does not need PyTorch imported.

>>> from models.mamba import MambaModel, pad_windows
>>> MambaModel.__module__, pad_windows.__module__
('models.mamba.model', 'models.mamba.windows')
"""

from __future__ import annotations

import importlib

__all__ = ["MambaBlock", "MambaClassifier", "MambaConfig", "MambaModel", "pad_windows", "select_backend"]

_HOMES = {"MambaBlock": "block", "MambaClassifier": "classifier", "MambaConfig": "classifier",
          "MambaModel": "model", "pad_windows": "windows", "select_backend": "backend"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
