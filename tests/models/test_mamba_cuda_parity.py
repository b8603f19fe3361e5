"""The two Mamba paths agree: mamba-ssm's CUDA kernels and the pure-PyTorch block, same weights.

Skipped where CUDA or mamba-ssm is missing (every machine of this project so far: docs/platform.md). On a GPU
machine with ``pip install .[gpu]`` it runs: the weights of the pure-PyTorch model are loaded into a
model built on mamba-ssm's ``Mamba`` and both score the same windows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.mamba.backend import make_block, mamba_ssm_status
from models.mamba.block import MambaBlock
from models.mamba.classifier import MambaClassifier, MambaConfig
from models.mamba.windows import pad_windows

_usable, _reason = mamba_ssm_status()
pytestmark = pytest.mark.skipif(not _usable, reason=f"needs CUDA and mamba-ssm to compare the two paths: {_reason}")

TOLERANCE = 1e-4  # fp32 both sides; the kernels sum the scan in another order


def test_block_paths_agree_with_the_same_state_dict():
    torch.manual_seed(0)
    ours = MambaBlock(d_model=32).cuda().eval()
    theirs = make_block(32, "mamba_ssm").eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(8, 60, 32, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), ours(x), rtol=TOLERANCE, atol=TOLERANCE)


def test_classifier_paths_agree_on_real_like_windows():
    torch.manual_seed(0)
    portable = MambaClassifier(MambaConfig(), backend="torch").eval()
    kernels = MambaClassifier(MambaConfig(), backend="mamba_ssm").cuda().eval()
    kernels.load_state_dict(portable.state_dict(), strict=True)
    rng = np.random.default_rng(0)
    windows = [rng.normal(size=(k, 41)) for k in (60, 60, 34, 12)]
    windows[1][:, 5:10] = np.nan  # optional fields the feed lacks
    x = torch.from_numpy(pad_windows(windows))
    with torch.no_grad():
        expected = portable(x).numpy()
        got = kernels(x.cuda()).cpu().numpy()
    assert np.max(np.abs(got - expected)) <= TOLERANCE
