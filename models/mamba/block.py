"""The Mamba block in pure PyTorch, parameter for parameter the block of ``mamba_ssm``.

Names, shapes and initialisation follow ``mamba_ssm.modules.mamba_simple.Mamba`` (state-spaces/mamba),
so a ``state_dict`` saved from one loads into the other and the same weights run on either path:
mamba-ssm's CUDA kernels where they exist, this selective scan everywhere else (mamba-ssm cannot even be
imported without CUDA, docs/platform.md). The scan is a Python loop over the time steps of the input: traced
for ONNX export it unrolls into plain ops (Mul, Add, Exp, ReduceSum), which every runtime has.

>>> import torch
>>> block = MambaBlock(d_model=32)
>>> [(name, tuple(p.shape)) for name, p in block.named_parameters()][:3]
[('A_log', (64, 16)), ('D', (64,)), ('in_proj.weight', (128, 32))]
>>> block(torch.zeros(2, 60, 32)).shape
torch.Size([2, 60, 32])

Recurrent step mode (mamba-ssm's ``Mamba.step``): one time step per call with a per-sequence state, the
last ``d_conv`` conv inputs and the scan's ``h``; stepping a window from the zero state gives what the
full-window forward gives at each step.

>>> x = torch.randn(2, 60, 32)
>>> conv, ssm = block.initial_state(2)
>>> for t in range(60):
...     y, conv, ssm = block.step(x[:, t], conv, ssm)
>>> bool(torch.allclose(y, block(x)[:, -1], atol=1e-5))
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MambaBlock", "selective_scan"]


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The selective scan of mamba-ssm's ``selective_scan_ref``, batch-first.

    ``u, delta, z``: (batch, L, d_inner), ``delta`` already through softplus; ``A``: (d_inner, d_state);
    ``B, C``: (batch, L, d_state); ``D``: (d_inner,). Returns ``y`` (batch, L, d_inner) with
    ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t``, ``y_t = C_t h_t + D u_t``, gated by ``silu(z)``.
    """
    # One time step at a time on (batch, d_inner, d_state) tensors, not all steps at once: the per-step
    # tensors stay in cache, and the all-at-once (batch, L, d_inner, d_state) form measured 2.6x slower
    # for training on CPU (memory-bound). L = 60 here; the ONNX exporter unrolls the loop.
    h = None
    ys = []
    for u_t, delta_t, B_t, C_t in zip(u.unbind(1), delta.unbind(1), B.unbind(1), C.unbind(1)):
        dA = torch.exp(delta_t.unsqueeze(-1) * A)                    # (b, d, n)
        dBu = (delta_t * u_t).unsqueeze(-1) * B_t.unsqueeze(1)       # (b, d, n)
        h = dBu if h is None else dA * h + dBu                       # h_0 = 0, so the first step is dBu
        ys.append((h * C_t.unsqueeze(1)).sum(-1))                    # (b, d); bmm measured slower here
    y = torch.stack(ys, dim=1)
    return (y + u * D) * F.silu(z)


class MambaBlock(nn.Module):
    """Mamba (S6) block: in_proj -> causal depthwise conv -> SiLU -> selective scan, gated -> out_proj.

    Same constructor arguments and defaults as ``mamba_ssm``'s ``Mamba`` (minus its kernel options).
    Input and output: (batch, L, d_model).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | str = "auto", dt_min: float = 0.001, dt_max: float = 0.1,
                 dt_scale: float = 1.0, dt_init_floor: float = 1e-4, conv_bias: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        # Registration order matters only for named_parameters(); it is mamba-ssm's: A_log and D are the
        # module's own parameters (listed first), then the sub-modules in this order.
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner,
                                padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + d_state * 2, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # mamba-ssm's initialisation: dt_proj keeps the variance of dt; its bias is softplus^-1 of a dt
        # log-uniform in [dt_min, dt_max]; A = -(1..d_state) per channel (S4D-real); D = 1.
        std = self.dt_rank ** -0.5 * dt_scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        seqlen = hidden_states.shape[1]
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)                  # (b, L, d_inner) each
        # Causal conv: padding d_conv-1 on both sides, keep the first L outputs (as mamba-ssm does).
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :seqlen].transpose(1, 2))
        dt, B, C = torch.split(self.x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))                                 # dt_proj.bias is the delta bias
        A = -torch.exp(self.A_log.float())
        return self.out_proj(selective_scan(x, delta, A, B, C, self.D.float(), z))

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The zero state of ``batch`` sequences: (conv inputs (b, d_inner, d_conv), h (b, d_inner, d_state))."""
        return (torch.zeros(batch, self.d_inner, self.d_conv), torch.zeros(batch, self.d_inner, self.d_state))

    def step(self, hidden: torch.Tensor, conv_state: torch.Tensor,
             ssm_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One time step: ``hidden`` (b, d_model) and the state after the previous step -> (output
        (b, d_model), new conv state, new scan state). The states passed in are not modified."""
        x, z = self.in_proj(hidden).chunk(2, dim=-1)                         # (b, d_inner) each
        conv_state = torch.cat([conv_state[..., 1:], x.unsqueeze(-1)], dim=-1)
        x = (conv_state * self.conv1d.weight[:, 0]).sum(-1)                  # the causal conv's last output
        if self.conv1d.bias is not None:
            x = x + self.conv1d.bias
        x = F.silu(x)
        dt, B, C = torch.split(self.x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))                                 # (b, d_inner)
        A = -torch.exp(self.A_log.float())
        # h = exp(delta A) h + (delta x) B: where no gradient is kept (serving), one new (b, d_inner, d_state)
        # tensor updated in place instead of five (the step is memory-bound: ~1.5 us a series of ~10)
        decay = delta.unsqueeze(-1) * A
        if torch.is_grad_enabled():
            ssm_state = torch.exp(decay) * ssm_state + (delta * x).unsqueeze(-1) * B.unsqueeze(1)
        else:
            ssm_state = decay.exp_().mul_(ssm_state).addcmul_((delta * x).unsqueeze(-1), B.unsqueeze(1))
        y = (torch.bmm(ssm_state, C.unsqueeze(-1)).squeeze(-1) + x * self.D.float()) * F.silu(z)
        return self.out_proj(y), conv_state, ssm_state
