"""Inference cost of an exported Mamba model: ONNX Runtime and PyTorch, one sequence and a batch of 256.

For ``candleflow bench inference`` (issue 4) and docs/mamba.md. Each figure is the best of ``rounds``
timings of one ``predict_proba`` call, in milliseconds per call and microseconds per sequence: the machine
is shared, and the best round is the one least disturbed by others. Inputs are real feature windows
when given (e.g. from ``training.mamba.build_windows``), else zeros (the cost does not depend on values).
Tested by tests/bench/test_mamba_inference.py on a tiny trained model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.mamba.model import MambaModel

__all__ = ["measure"]


def _best_ms(fn, rounds: int) -> float:
    fn()  # warm-up: first-run allocations and lazy initialisation are not the steady cost
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def measure(model_dir: str | Path, batches: Sequence[int] = (1, 256), rounds: int = 5,
            windows: np.ndarray | None = None, torch_threads: int = 1) -> dict[str, Any]:
    """{"onnx": {batch: figures}, "torch": {...}, ...} for the model in ``model_dir`` (1 thread each)."""
    import torch

    onnx_model = MambaModel.load(model_dir, intra_op_threads=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        torch_model = MambaModel.load(model_dir, backend="torch")
        out: dict[str, Any] = {"provider": onnx_model.provider, "torch_backend": torch_model.provider,
                               "torch_threads": torch_threads}
        for name, model in (("onnx", onnx_model), ("torch", torch_model)):
            out[name] = {}
            for n in batches:
                x = (np.resize(windows, (n, *windows.shape[1:])) if windows is not None
                     else np.zeros((n, model.window, len(model.feature_names)), dtype=np.float32))
                ms = _best_ms(lambda m=model, x=x: m.predict_proba(x), rounds)
                out[name][str(n)] = {"ms_per_call": round(ms, 3), "us_per_sequence": round(ms * 1000 / n, 1)}
        return out
    finally:
        torch.set_num_threads(previous)
