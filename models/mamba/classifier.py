"""The Mamba direction classifier: 60 feature vectors in, P(up) at horizons 1..5 out.

Raw feature windows go in, exactly as ``FeatureState.window(60)`` returns them: the normalisation
(training statistics, stored as buffers) and the NaN rule are part of the network, so the PyTorch
model, the ONNX graph and every caller apply the same rule and nothing can be forgotten on one path.

NaN rule: features are standardised with the training mean and std, then NaN becomes 0 (the training
mean: "no information") and values are clipped to +-``clip`` standard deviations, so a missing input,
an infinite ratio or a volume spike cannot blow up the state of the scan.

>>> import torch
>>> model = MambaClassifier(MambaConfig()).eval()
>>> x = torch.full((3, 60, 41), float("nan"))
>>> p = model(x)
>>> p.shape, bool(torch.isfinite(p).all())
(torch.Size([3, 5]), True)

In recurrent step mode one feature vector per series and call, with the state of every layer (pure-PyTorch
block): from the zero state, the step after a window's last vector equals the window forward.

>>> windows = torch.randn(3, 60, 41)
>>> state = model.initial_state(3)
>>> for t in range(60):
...     p, state = model.step(windows[:, t], state)
>>> bool(torch.allclose(p, model(windows), atol=1e-6))
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from models.mamba.backend import make_block

__all__ = ["MambaClassifier", "MambaConfig", "RMSNorm"]


@dataclass(frozen=True)
class MambaConfig:
    """Architecture of :class:`MambaClassifier`; stored in model.json so a loader can rebuild it."""

    n_features: int = 41
    window: int = 60
    horizons: tuple[int, ...] = (1, 2, 3, 4, 5)
    d_model: int = 32
    n_layers: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dropout: float = 0.1
    clip: float = 10.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["horizons"] = list(self.horizons)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MambaConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "horizons" in known:
            known["horizons"] = tuple(known["horizons"])
        return cls(**known)


class RMSNorm(nn.Module):
    """RMS normalisation written out (Pow, ReduceMean, Sqrt) so it exports at any ONNX opset >= 17."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class MambaClassifier(nn.Module):
    """Input projection -> ``n_layers`` x (RMSNorm -> Mamba block, residual) -> RMSNorm -> last step ->
    one logit per horizon. ``forward`` gives probabilities, :meth:`logits` the pre-sigmoid values."""

    def __init__(self, config: MambaConfig, backend: str = "torch") -> None:
        super().__init__()
        self.config = config
        self.backend = backend
        # Identity normalisation until training sets the statistics (set_normalisation).
        self.register_buffer("mean", torch.zeros(config.n_features))
        self.register_buffer("std", torch.ones(config.n_features))
        self.input_proj = nn.Linear(config.n_features, config.d_model)
        self.norms = nn.ModuleList(RMSNorm(config.d_model) for _ in range(config.n_layers))
        self.layers = nn.ModuleList(
            make_block(config.d_model, backend, d_state=config.d_state, d_conv=config.d_conv, expand=config.expand)
            for _ in range(config.n_layers))
        self.norm_f = RMSNorm(config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.d_model, len(config.horizons))

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Training statistics per feature; a feature with no spread (or never seen) passes through as 0."""
        mean = np.nan_to_num(np.asarray(mean, dtype=np.float64), nan=0.0)
        std = np.asarray(std, dtype=np.float64)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        z = torch.where(torch.isnan(z), torch.zeros_like(z), z)
        return z.clamp(-self.config.clip, self.config.clip)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_proj(self.normalise(x))
        for norm, layer in zip(self.norms, self.layers):
            h = h + layer(norm(h))
        # Last-step pooling: the scan is causal, so the last step has seen the whole window.
        return self.head(self.dropout(self.norm_f(h[:, -1])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    def initial_state(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The zero state of ``batch`` series: per layer, (conv inputs, scan state) (models/mamba/block.py)."""
        return [layer.initial_state(batch) for layer in self.layers]

    def step(self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """One candle per series: raw features (b, n_features) and the state after the previous candle ->
        (P(up) per horizon (b, horizons), the new state). Needs the pure-PyTorch block's ``step``."""
        h = self.input_proj(self.normalise(x))
        new_state = []
        for norm, layer, (conv, ssm) in zip(self.norms, self.layers, state):
            out, conv, ssm = layer.step(norm(h), conv, ssm)
            h = h + out
            new_state.append((conv, ssm))
        return torch.sigmoid(self.head(self.dropout(self.norm_f(h)))), new_state
