"""The pure-PyTorch Mamba block: mamba-ssm's parameters exactly, and the selective scan mamba-ssm computes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.mamba.block import MambaBlock, selective_scan
from models.mamba.classifier import MambaClassifier, MambaConfig

# Copied from mamba-ssm's source, not computed: state-spaces/mamba, mamba_ssm/modules/mamba_simple.py,
# class Mamba.__init__ (d_state=16, d_conv=4, expand=2, dt_rank="auto" = ceil(d_model / 16),
# conv_bias=True, bias=False). Its own parameters A_log and D come first in named_parameters(), then
# in_proj, conv1d, x_proj, dt_proj, out_proj in registration order. For d_model=32: d_inner=64, dt_rank=2.
MAMBA_SSM_PARAMETERS_D32 = [
    ("A_log", (64, 16)),            # repeat(arange(1, d_state + 1), "n -> d n", d=d_inner), logged
    ("D", (64,)),                   # ones(d_inner)
    ("in_proj.weight", (128, 32)),  # Linear(d_model, d_inner * 2, bias=False)
    ("conv1d.weight", (64, 1, 4)),  # Conv1d(d_inner, d_inner, kernel_size=d_conv, groups=d_inner, padding=d_conv - 1)
    ("conv1d.bias", (64,)),
    ("x_proj.weight", (34, 64)),    # Linear(d_inner, dt_rank + d_state * 2, bias=False)
    ("dt_proj.weight", (64, 2)),    # Linear(dt_rank, d_inner, bias=True)
    ("dt_proj.bias", (64,)),
    ("out_proj.weight", (32, 64)),  # Linear(d_inner, d_model, bias=False)
]


def test_parameters_have_mamba_ssm_names_and_shapes():
    block = MambaBlock(d_model=32)
    assert [(n, tuple(p.shape)) for n, p in block.named_parameters()] == MAMBA_SSM_PARAMETERS_D32
    assert list(block.state_dict()) == [n for n, _ in MAMBA_SSM_PARAMETERS_D32]  # no extra buffers


def test_dt_rank_auto_follows_mamba_ssm():
    assert MambaBlock(d_model=16).dt_rank == 1 and MambaBlock(d_model=33).dt_rank == 3
    assert MambaBlock(d_model=32, dt_rank=5).x_proj.weight.shape == (5 + 32, 64)


def test_initialisation_follows_mamba_ssm():
    torch.manual_seed(0)
    block = MambaBlock(d_model=32)
    assert torch.equal(block.A_log, torch.log(torch.arange(1, 17, dtype=torch.float32)).repeat(64, 1))
    assert torch.equal(block.D, torch.ones(64))
    dt = F.softplus(block.dt_proj.bias)  # dt_proj.bias = softplus^-1(dt), dt log-uniform in [1e-3, 0.1]
    assert bool(((dt > 1e-3 - 1e-6) & (dt < 0.1 + 1e-6)).all())
    assert float(block.dt_proj.weight.detach().abs().max()) <= 2 ** -0.5


def test_classifier_blocks_load_each_others_state_dict():
    a, b = MambaClassifier(MambaConfig()), MambaClassifier(MambaConfig())
    b.load_state_dict(a.state_dict(), strict=True)
    for i in range(2):
        block_keys = {k.split(f"layers.{i}.", 1)[1] for k in a.state_dict() if k.startswith(f"layers.{i}.")}
        assert block_keys == {n for n, _ in MAMBA_SSM_PARAMETERS_D32}


def _selective_scan_ref(u, delta, A, B, C, D, z):
    """mamba-ssm's selective_scan_ref (mamba_ssm/ops/selective_scan_interface.py) in its own layout:
    u, delta, z (b, d, L); B, C (b, n, L); einsum per step, as written there."""
    delta_a = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    delta_b_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    x = u.new_zeros(u.shape[0], A.shape[0], A.shape[1])
    ys = []
    for i in range(u.shape[2]):
        x = delta_a[:, :, i] * x + delta_b_u[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[:, None]
    return out * F.silu(z)


def test_selective_scan_equals_mamba_ssm_reference():
    g = torch.Generator().manual_seed(1)
    b, L, d, n = 3, 60, 8, 16
    u, z = torch.randn(b, L, d, generator=g), torch.randn(b, L, d, generator=g)
    delta = F.softplus(torch.randn(b, L, d, generator=g))
    A = -torch.exp(torch.randn(d, n, generator=g))
    B, C = torch.randn(b, L, n, generator=g), torch.randn(b, L, n, generator=g)
    D = torch.randn(d, generator=g)
    ours = selective_scan(u, delta, A, B, C, D, z)
    ref = _selective_scan_ref(u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2),
                              C.transpose(1, 2), D, z.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_block_is_causal():
    torch.manual_seed(0)
    block = MambaBlock(d_model=16).eval()
    x = torch.randn(2, 60, 16)
    y = x.clone()
    y[:, 40:] = torch.randn(2, 20, 16)  # change only the future of step 39
    with torch.no_grad():
        torch.testing.assert_close(block(x)[:, :40], block(y)[:, :40])


@pytest.mark.parametrize("d_model", [8, 32])
def test_block_output_shape_and_finite(d_model):
    out = MambaBlock(d_model=d_model)(torch.randn(4, 60, d_model))
    assert out.shape == (4, 60, d_model) and bool(torch.isfinite(out).all())
    assert math.isfinite(float(out.detach().sum()))


def test_mamba_ssm_backend_is_refused_with_the_reason_when_unusable():
    from models.mamba.backend import make_block, mamba_ssm_status, select_backend
    from core.errors import ConfigError

    usable, reason = mamba_ssm_status()
    if usable:
        pytest.skip("mamba-ssm is usable here")
    assert select_backend() == "torch"
    with pytest.raises(ConfigError, match="not usable here"):
        make_block(32, "mamba_ssm")
    assert reason
