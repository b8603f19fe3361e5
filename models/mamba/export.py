"""Mamba classifier -> ONNX, reproducible byte for byte, with a parity check against PyTorch.

Always exported from the pure-PyTorch block (mamba-ssm's CUDA kernels have no ONNX form): a model
trained with the kernels is first copied into the portable block, which takes the same state_dict.
The selective scan's loop over the 60 steps unrolls at export, so the graph holds only standard ops
and ONNX Runtime runs it on any provider. The batch dimension stays dynamic; the window is fixed.

>>> import numpy as np, torch
>>> from models.mamba.classifier import MambaClassifier, MambaConfig
>>> _ = torch.manual_seed(0)
>>> model = MambaClassifier(MambaConfig(d_model=8, n_layers=1))
>>> onnx_bytes, opset = export_onnx(model)
>>> opset >= 17, check_parity(onnx_bytes, model, np.random.default_rng(0).normal(size=(4, 60, 41))) <= 1e-4
(True, True)
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch

from models.mamba.classifier import MambaClassifier
from models.mamba.windows import pad_windows
from models.onnx_session import create_session
from core.errors import ConfigError

__all__ = ["INPUT_NAME", "ONNX_OPSET", "OUTPUT_NAME", "PARITY_TOLERANCE", "ParityError", "check_parity",
           "export_onnx", "portable_copy"]

INPUT_NAME = "windows"
OUTPUT_NAME = "probabilities"
ONNX_OPSET = 17
PARITY_TOLERANCE = 1e-4  # float32 through ~2,000 unrolled steps: 1e-6 typical, 1e-4 is the promise


class ParityError(ConfigError):
    """The ONNX export does not compute what the PyTorch model does: never ship it."""


def portable_copy(model: MambaClassifier) -> MambaClassifier:
    """The same model on the pure-PyTorch block, on CPU, in eval mode (for export and parity)."""
    copy = MambaClassifier(model.config, backend="torch")
    copy.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    return copy.eval()


def export_onnx(model: MambaClassifier, opset: int = ONNX_OPSET) -> tuple[bytes, int]:
    """(serialized ONNX, opset): input ``windows`` (batch, window, features) float32, output
    ``probabilities`` (batch, n_horizons)."""
    portable = portable_copy(model)
    cfg = portable.config
    example = torch.zeros(2, cfg.window, cfg.n_features)  # batch 2, so nothing specialises on batch 1
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript (not installed);
        # it is still the one that unrolls a Python loop into a plain graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(portable, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    proto.graph.name = "mamba-direction"
    onnx.checker.check_model(proto)
    used = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return proto.SerializeToString(), used


def check_parity(onnx_bytes: bytes, model: MambaClassifier, windows: np.ndarray,
                 tolerance: float = PARITY_TOLERANCE) -> float:
    """Max |P_onnx - P_torch| over ``windows`` (all horizons); ParityError if above ``tolerance``."""
    cfg = model.config
    x = pad_windows(windows, cfg.window, cfg.n_features)
    if not len(x):
        return 0.0
    session, _ = create_session(onnx_bytes, providers=["CPUExecutionProvider"])
    (onnx_p,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    with torch.no_grad():
        torch_p = portable_copy(model)(torch.from_numpy(x)).numpy()
    diff = float(np.max(np.abs(onnx_p.astype(np.float64) - torch_p.astype(np.float64))))
    if not diff <= tolerance:  # "not <=" so that a NaN difference fails too
        raise ParityError(f"ONNX export differs from the PyTorch Mamba model by {diff:.3g} (> {tolerance:g}) "
                          f"on {len(x)} windows; not writing the model")
    return diff
