"""A package's public API named in its ``__init__`` without importing it all at once.

``models`` would otherwise load ONNX Runtime (and ``models.mamba`` PyTorch) for anyone who only wants
``core.signals``; PEP 562's module ``__getattr__`` imports a name's home module on first use.

>>> namespace = {}
>>> __all__, __getattr__ = lazy_exports("demo", {"Candle": "core.candle"}, namespace)
>>> __all__, __getattr__("Candle").__name__, "Candle" in namespace
(['Candle'], 'Candle', True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str], namespace: dict[str, Any]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``: each name of ``homes`` (name -> module) imported from its
    module when first asked for, then kept in ``namespace`` (the package's globals)."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(homes[name]), name)
        return value

    return sorted(homes), __getattr__
