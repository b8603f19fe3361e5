"""Which Mamba block runs: mamba-ssm's CUDA kernels when they can, the pure-PyTorch block otherwise.

Both take the same ``state_dict`` (models/mamba/block.py), so the choice changes speed, not the model.
mamba-ssm needs CUDA at import time (docs/platform.md): on a CPU-only machine importing it fails, which is
the expected case here, not an error. The choice is made and logged once per process.

>>> backend = select_backend()
>>> backend in BACKENDS
True
>>> make_block(32, "torch").__class__.__name__
'MambaBlock'
>>> make_block(32, "cuda-kernels-please")
Traceback (most recent call last):
...
core.errors.ConfigError: unknown Mamba backend 'cuda-kernels-please' (use one of: mamba_ssm, torch)
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn

from models.mamba.block import MambaBlock
from core.errors import ConfigError

__all__ = ["BACKENDS", "make_block", "mamba_ssm_status", "select_backend"]

log = logging.getLogger(__name__)

BACKENDS = ("mamba_ssm", "torch")


@functools.cache
def mamba_ssm_status() -> tuple[bool, str]:
    """(usable, reason): whether mamba-ssm's kernels can run in this process, and why (not)."""
    if not torch.cuda.is_available():
        return False, "no CUDA device (mamba-ssm's kernels are CUDA-only)"
    try:
        from mamba_ssm.modules.mamba_simple import Mamba  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or any CUDA/triton error raised while importing the kernels
        return False, f"mamba_ssm cannot be imported: {type(exc).__name__}: {exc}"
    return True, "CUDA and mamba_ssm available"


@functools.cache
def select_backend() -> str:
    """``"mamba_ssm"`` with CUDA and mamba-ssm importable, else ``"torch"``; logged the first time."""
    usable, reason = mamba_ssm_status()
    backend = "mamba_ssm" if usable else "torch"
    log.info("Mamba backend: %s (%s)", backend, reason)
    return backend


def make_block(d_model: int, backend: str, **kwargs) -> nn.Module:
    """A Mamba block of ``backend``; both kinds have the same parameters for the same arguments."""
    if backend == "torch":
        return MambaBlock(d_model, **kwargs)
    if backend == "mamba_ssm":
        usable, reason = mamba_ssm_status()
        if not usable:
            raise ConfigError(f"Mamba backend mamba_ssm is not usable here: {reason}")
        from mamba_ssm.modules.mamba_simple import Mamba

        # The kernels live on the GPU; the module's parameters must too.
        return Mamba(d_model, **kwargs).to("cuda")
    raise ConfigError(f"unknown Mamba backend {backend!r} (use one of: {', '.join(BACKENDS)})")
