"""``MambaRecurrent.load(dir, device=)``: the device rule, the provider it reports, and the fallback to the CPU,
on a CPU-only machine (the CUDA paths themselves: tests/models/test_mamba_cuda_parity.py, on a GPU)."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch

import models.mamba.recurrent as recurrent
from core.candle_files import read_candle_file
from core.errors import ConfigError
from models.mamba.backend import mamba_ssm_status
from models.mamba.classifier import MambaConfig
from models.mamba.recurrent import CPU_PROVIDER, MambaRecurrent
from training.mamba import BUNDLED, train_mamba_on_series
from training.mamba_windows import build_windows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model (d_model 8, one layer, one epoch) on 900 real candles: the device rule, not the skill."""
    out = tmp_path_factory.mktemp("mamba-device")
    candles = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:900]
    train_mamba_on_series([candles], out, progress=False, config=MambaConfig(d_model=8, n_layers=1), epochs=1,
                          threads=1)
    return out


@pytest.fixture(scope="module")
def windows():
    """64 real windows of a held-out pair, warm-up (padded) ones included."""
    w = build_windows([read_candle_file(BUNDLED / "held-out" / "ETC-BTC_5m.csv.gz").candles[:300]]).x
    return np.ascontiguousarray(w[-64:], dtype=np.float32)


def _run(rec: MambaRecurrent, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    state = rec.initial_state(len(windows))
    for t in range(windows.shape[1]):
        p, state = rec.step(windows[:, t], state)
    return p, state


@pytest.fixture
def cuda_claimed(monkeypatch):
    """torch says CUDA is there (on this CPU machine): mamba-ssm's status is read first, so its cache keeps the
    truth ("no CUDA device") and the loader takes the PyTorch block."""
    mamba_ssm_status()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def _failing_move(model, device):
    raise RuntimeError(f"CUDA error: no kernel image is available for execution on the device ({device})\nmore")


def test_cpu_is_the_default_here_bit_for_bit(model_dir, windows):
    default, cpu = MambaRecurrent.load(model_dir), MambaRecurrent.load(model_dir, device="cpu")
    assert not torch.cuda.is_available()  # this machine: "auto" means the CPU
    assert default.device == cpu.device == "cpu"
    assert default.provider == cpu.provider == CPU_PROVIDER == "torch-cpu-step"
    p_default, s_default = _run(default, windows)
    p_cpu, s_cpu = _run(cpu, windows)
    assert np.array_equal(p_default, p_cpu) and np.array_equal(s_default, s_cpu)
    # ... and the classifier's own step (the path MambaRecurrent has always taken on the CPU), bit for bit.
    state = cpu.model.initial_state(len(windows))
    with torch.inference_mode():
        for t in range(windows.shape[1]):
            p, state = cpu.model.step(torch.from_numpy(windows[:, t]), state)
    assert np.array_equal(p.numpy().astype(np.float64), p_cpu)
    assert p_cpu.std() > 0  # real windows: not one answer for all


@pytest.mark.parametrize("device", ["tpu", "CUDA", "cuda:x", ""])
def test_an_unknown_device_is_a_one_line_config_error(model_dir, device):
    with pytest.raises(ConfigError, match="unknown Mamba step device") as info:
        MambaRecurrent.load(model_dir, device=device)
    assert "\n" not in str(info.value) and "auto, cpu, cuda" in str(info.value)


def test_the_kernels_on_the_cpu_or_an_unknown_block_are_config_errors(model_dir):
    with pytest.raises(ConfigError, match="CUDA only"):
        MambaRecurrent.load(model_dir, device="cpu", backend="mamba_ssm")
    with pytest.raises(ConfigError, match="unknown Mamba backend 'onnx'"):
        MambaRecurrent.load(model_dir, backend="onnx")


def test_a_failing_cuda_path_falls_back_to_the_cpu_with_one_warning(model_dir, windows, cuda_claimed, monkeypatch,
                                                                    caplog):
    monkeypatch.setattr(recurrent, "_move", _failing_move)
    with caplog.at_level(logging.WARNING, logger="models.mamba.recurrent"):
        rec = MambaRecurrent.load(model_dir)  # "auto": CUDA claimed, so tried first
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "stepping on the CPU instead" in warnings[0].getMessage()
    assert rec.device == "cpu"
    assert rec.provider == f"{CPU_PROVIDER} (CUDA failed: RuntimeError: CUDA error: no kernel image is available " \
                           "for execution on the device (cuda))"
    p, state = _run(rec, windows)
    p_cpu, s_cpu = _run(MambaRecurrent.load(model_dir, device="cpu"), windows)
    assert np.array_equal(p, p_cpu) and np.array_equal(state, s_cpu)  # the same CPU path, the same numbers


def test_cuda_asked_for_does_not_fall_back(model_dir, cuda_claimed, monkeypatch):
    monkeypatch.setattr(recurrent, "_move", _failing_move)
    with pytest.raises(ConfigError, match=r"Mamba step on cuda \(PyTorch block\) failed: RuntimeError: CUDA error"):
        MambaRecurrent.load(model_dir, device="cuda")


class _InPlaceStepBlock(torch.nn.Module):
    """mamba-ssm's ``Mamba.step`` contract on the CPU: (b, 1, d_model) in and out, and the states passed in
    updated in place (as its kernels do), around the pure-PyTorch block's arithmetic."""

    def __init__(self, block) -> None:
        super().__init__()
        self.block = block
        self.d_inner, self.d_conv, self.d_state = block.d_inner, block.d_conv, block.d_state

    def step(self, hidden, conv_state, ssm_state):
        assert hidden.shape[1] == 1
        out, conv, ssm = self.block.step(hidden.squeeze(1), conv_state, ssm_state)
        conv_state.copy_(conv)
        ssm_state.copy_(ssm)
        return out.unsqueeze(1), conv_state, ssm_state


def test_the_kernel_block_step_leaves_the_callers_state_alone(model_dir, windows):
    cpu = MambaRecurrent.load(model_dir, device="cpu")
    model = copy.deepcopy(cpu.model)
    model.layers = torch.nn.ModuleList(_InPlaceStepBlock(layer) for layer in model.layers)
    kernels = MambaRecurrent(model, cpu.metadata, "cpu")  # the device path (mamba-ssm's step) on the CPU
    assert kernels.provider == "torch-cpu-step (mamba-ssm kernels)" and kernels.state_size == cpu.state_size
    p, state = _run(kernels, windows[:, :30])
    p_cpu, s_cpu = _run(cpu, windows[:, :30])
    assert np.abs(p - p_cpu).max() <= 1e-6 and np.abs(state - s_cpu).max() <= 1e-6
    before = state.copy()
    kernels.step(windows[:, 30], state)
    assert np.array_equal(state, before)  # the in-place update hit a copy, not the series book's array
