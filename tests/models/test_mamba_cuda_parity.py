"""The Mamba GPU paths agree with the CPU path, with TRAINED weights on real windows: the window forward and
the recurrent step mode, on mamba-ssm's CUDA kernels and on the pure-PyTorch block moved to the GPU.

Runs wherever CUDA exists: a small model (the default architecture, one epoch on real candles, trained on the
CPU block: the weights that are exported and served) is trained once for the module, and scored on real
windows of a pair it never saw, padded warm-up windows included. The mamba-ssm tests also need mamba-ssm
(``pip install .[gpu]``). Skipped with the reason where either is missing (every machine of this project so
far: docs/platform.md). The step on the GPU is the worker's own (``MambaRecurrent.load(dir, device="cuda")``).
``python -m bench.gpu_check`` prints the same comparisons on a whole bundle.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.candle_files import read_candle_file
from models.mamba.backend import make_block, mamba_ssm_status
from models.mamba.block import MambaBlock
from models.mamba.classifier import MambaClassifier, MambaConfig
from models.mamba.recurrent import MambaRecurrent
from training.mamba import BUNDLED, train_mamba_on_series
from training.mamba_windows import build_windows

# Not tests.conftest's names: on a GPU machine this module runs with --noconftest (make gpu-check), where the
# project's other dependencies (LightGBM for tests/models/conftest.py, the broker for tests/conftest.py) are absent.
CANDLES, HELD_OUT = BUNDLED, BUNDLED / "held-out"
_cuda = torch.cuda.is_available()
_usable, _reason = mamba_ssm_status()
pytestmark = pytest.mark.skipif(not _cuda, reason="no CUDA device: the GPU paths cannot run here")
needs_kernels = pytest.mark.skipif(not _usable, reason=f"needs CUDA and mamba-ssm to compare the two paths: {_reason}")
BACKENDS = [pytest.param("mamba_ssm", marks=needs_kernels), "torch"]

TOLERANCE = 1e-4  # fp32 both sides; the kernels (and cuBLAS) sum in another order


@pytest.fixture(scope="module", autouse=True)
def no_tf32():
    """A float32 comparison: TF32 (cuDNN's default for convolutions) would round to ~1e-3."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """The default architecture trained one epoch on 1,500 real candles of each bundled pair (CPU block)."""
    out = tmp_path_factory.mktemp("mamba-cuda-parity")
    series = [read_candle_file(CANDLES / name).candles[:1500] for name in ("ETH-BTC_5m.csv.gz", "LTC-BTC_5m.csv.gz")]
    train_mamba_on_series(series, out, progress=False, config=MambaConfig(), epochs=1, threads=1, backend="torch")
    return out


@pytest.fixture(scope="module")
def trained(trained_dir) -> MambaRecurrent:
    """The CPU path: its .model is the portable classifier on the CPU, weights from weights.pt ("auto" would be CUDA)."""
    return MambaRecurrent.load(trained_dir, device="cpu")


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """256 real windows of the held-out pair: its first 64 (left-padded: the state was warming up), then 192 full."""
    w = build_windows([read_candle_file(HELD_OUT / "ETC-BTC_5m.csv.gz").candles[:800]]).x
    assert np.isnan(w[0, 0]).all() and len(w) >= 400
    return np.ascontiguousarray(np.concatenate([w[:64], w[-192:]]), dtype=np.float32)


def _on_gpu(trained: MambaRecurrent, backend: str) -> MambaClassifier:
    model = MambaClassifier(MambaConfig.from_dict(trained.metadata.config), backend=backend)
    model.load_state_dict(trained.model.state_dict(), strict=True)
    return model.cuda().eval()


def _layer_inputs(model: MambaClassifier, x: torch.Tensor) -> list[torch.Tensor]:
    """The (normalised) hidden states each Mamba layer of ``model`` receives for the windows ``x``."""
    inputs, h = [], model.input_proj(model.normalise(x))
    for norm, layer in zip(model.norms, model.layers):
        inputs.append(norm(h))
        h = h + layer(inputs[-1])
    return inputs


@needs_kernels
def test_block_paths_agree_with_trained_weights_on_real_hidden_states(trained, windows):
    portable = trained.model
    with torch.no_grad():
        hidden = _layer_inputs(portable, torch.from_numpy(windows))
        for layer, x in zip(portable.layers, hidden):
            ours = MambaBlock(layer.d_model, d_state=layer.d_state, d_conv=layer.d_conv, expand=layer.expand)
            ours.load_state_dict(layer.state_dict(), strict=True)
            theirs = make_block(layer.d_model, "mamba_ssm", d_state=layer.d_state, d_conv=layer.d_conv,
                                expand=layer.expand).eval()
            theirs.load_state_dict(layer.state_dict(), strict=True)
            x = x.cuda()
            torch.testing.assert_close(theirs(x), ours.cuda().eval()(x), rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize("backend", BACKENDS)
def test_window_forward_on_the_gpu_equals_the_cpu_path(trained, windows, backend):
    with torch.no_grad():
        expected = trained.model(torch.from_numpy(windows)).numpy()
        got = _on_gpu(trained, backend)(torch.from_numpy(windows).cuda()).cpu().numpy()
    assert np.abs(got - expected).max() <= TOLERANCE
    assert expected.std() > 1e-3  # trained weights: the windows do not all give one answer


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_mode_on_the_gpu_equals_the_cpu_step_and_the_window_forward(trained_dir, trained, windows, backend):
    gpu = MambaRecurrent.load(trained_dir, device="cuda", backend=backend)  # the worker's step, the block asked for
    assert gpu.device == "cuda" and trained.device == "cpu" and trained.provider == "torch-cpu-step"
    assert gpu.provider == {"mamba_ssm": "torch-cuda-step (mamba-ssm kernels)",
                            "torch": "torch-cuda-step (PyTorch block)"}[backend]
    assert gpu.state_size == trained.state_size  # one state layout: a series' state moves between them
    cpu_state, gpu_state = trained.initial_state(len(windows)), gpu.initial_state(len(windows))
    for t in range(windows.shape[1]):
        p_cpu, cpu_state = trained.step(windows[:, t], cpu_state)
        p_gpu, gpu_state = gpu.step(windows[:, t], gpu_state)
    assert np.abs(p_gpu - p_cpu).max() <= TOLERANCE
    # The states themselves (conv inputs, scan h: not bounded like P(up)), relative to their size.
    assert np.abs(gpu_state - cpu_state).max() <= TOLERANCE * max(1.0, float(np.abs(cpu_state).max()))
    with torch.no_grad():
        window = trained.model(torch.from_numpy(windows)).numpy()
    assert np.abs(p_gpu - window).max() <= TOLERANCE
    before = gpu_state.copy()
    gpu.step(windows[:, -1], gpu_state)
    assert np.array_equal(gpu_state, before)  # the step's input state is never written to (mamba-ssm's is in place)


def test_auto_on_a_cuda_machine_serves_the_step_on_the_gpu(trained_dir, trained, windows):
    """What models.loading serves (``MambaRecurrent.load(path)``): CUDA, mamba-ssm's kernels when usable."""
    auto = MambaRecurrent.load(trained_dir)
    assert auto.device == "cuda"
    assert auto.provider == f"torch-cuda-step ({'mamba-ssm kernels' if _usable else 'PyTorch block'})"
    p_auto, _ = auto.step(windows[:, -1], trained.initial_state(len(windows)))
    p_cpu, _ = trained.step(windows[:, -1], trained.initial_state(len(windows)))
    assert np.abs(p_auto - p_cpu).max() <= TOLERANCE
