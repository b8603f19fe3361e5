"""Which ONNX Runtime execution providers to ask for, and a record of what each session really got.

Preference is TensorRT, then CUDA, then CPU. The order can be replaced by configuration (an explicit
list, e.g. from a settings field ``"cuda,cpu"``), and an explicit list is honoured strictly: asking for
CUDA only and getting CPU is a configuration error, not a silent slowdown. What a session runs on is
read from ``session.get_providers()`` after creation, because ``onnxruntime-gpu`` lists CUDA/TensorRT
as available on machines without a GPU and then falls back to CPU (docs/platform.md).

>>> parse_providers("cuda, cpu")
('CUDAExecutionProvider', 'CPUExecutionProvider')
>>> parse_providers(None) == PROVIDER_PREFERENCE
True
>>> parse_providers(["tpu"])
Traceback (most recent call last):
...
core.errors.ConfigError: unknown ONNX Runtime provider 'tpu' (known short names: tensorrt, cuda, cpu)
>>> usable_providers(["CPUExecutionProvider"], available=["CPUExecutionProvider"])
['CPUExecutionProvider']
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence

from core.errors import ConfigError

__all__ = ["CPU", "PROVIDER_PREFERENCE", "ProviderLog", "check_granted", "parse_providers", "usable_providers"]

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
# Fastest first; CPU always last so there is always somewhere to run.
PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", CPU)
_SHORT = {"tensorrt": PROVIDER_PREFERENCE[0], "cuda": PROVIDER_PREFERENCE[1], "cpu": CPU}


def parse_providers(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Configuration -> provider names. None or empty means the default preference; short names
    (``tensorrt``, ``cuda``, ``cpu``) and full ONNX Runtime names are accepted, comma-separated or as a list."""
    if spec is None:
        return PROVIDER_PREFERENCE
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        full = _SHORT.get(item.lower(), item)
        if not full.endswith("ExecutionProvider"):
            raise ConfigError(f"unknown ONNX Runtime provider {item!r} (known short names: {', '.join(_SHORT)})")
        names.append(full)
    return tuple(dict.fromkeys(names)) or PROVIDER_PREFERENCE


def usable_providers(wanted: Sequence[str], available: Iterable[str]) -> list[str]:
    """``wanted`` in order, without those this onnxruntime build lacks; ConfigError if none remain."""
    available = set(available)
    usable = [p for p in wanted if p in available]
    if not usable:
        raise ConfigError(
            f"none of the ONNX Runtime providers {', '.join(wanted) or '(none)'} is available "
            f"(this build has {', '.join(sorted(available))})"
        )
    return usable


def check_granted(granted: str, wanted: Sequence[str], explicit: bool) -> None:
    """An explicit configuration that left CPU out must not end up on CPU (ORT adds it as a fallback)."""
    if explicit and granted not in wanted:
        raise ConfigError(
            f"ONNX Runtime was configured to use {', '.join(wanted)} but the session runs on {granted} "
            "(the GPU or its libraries are missing); add 'cpu' to the configured providers to allow that"
        )


class ProviderLog:
    """Logs the provider decision once per process and distinct outcome, not once per model or reload.

    >>> seen = ProviderLog()
    >>> seen.first(("CUDAExecutionProvider", "CPUExecutionProvider"), "CPUExecutionProvider")
    True
    >>> seen.first(("CUDAExecutionProvider", "CPUExecutionProvider"), "CPUExecutionProvider")
    False
    """

    def __init__(self) -> None:
        self._seen: set[tuple[tuple[str, ...], str]] = set()
        self._lock = threading.Lock()  # sessions may be created from a loader thread during a hot reload

    def first(self, wanted: Sequence[str], granted: str) -> bool:
        key = (tuple(wanted), granted)
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True

    def record(self, wanted: Sequence[str], granted: str) -> None:
        if self.first(wanted, granted):
            fallback = granted != wanted[0]
            log.log(logging.WARNING if fallback and granted == CPU else logging.INFO,
                    "ONNX Runtime provider: %s (asked for %s)", granted, ", ".join(wanted))
