"""The Mamba step as one ONNX Runtime graph (models/mamba/onnx_step.py) against the PyTorch and NumPy steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from models.mamba.metadata import ARRAYS_FILE
from models.mamba.numpy_step import NumpyMambaStep
from models.mamba.onnx_step import ONNX_STEP_PROVIDER, OnnxMambaStep, scan_graph
from models.mamba.recurrent import MambaRecurrent


def test_onnx_steps_equal_the_pytorch_steps_through_real_windows(mamba_dir, held_out_windows):
    onnx_step, torch_step = OnnxMambaStep.load(mamba_dir), MambaRecurrent.load(mamba_dir, device="cpu")
    assert onnx_step.state_size == torch_step.state_size and onnx_step.provider == ONNX_STEP_PROVIDER
    a = b = onnx_step.initial_state(len(held_out_windows))
    for t in range(held_out_windows.shape[1]):  # 60 candles of 256 series: errors would pile up in the state
        p_onnx, a = onnx_step.step(held_out_windows[:, t], a)
        p_torch, b = torch_step.step(held_out_windows[:, t], b)
        assert np.abs(p_onnx - p_torch).max() <= 1e-5
    assert np.abs(a - b).max() <= 1e-4 and p_onnx.std() > 1e-3
    # one layout: a state left by the NumPy or PyTorch step steps on here, and the other way round
    numpy_step = NumpyMambaStep.load(mamba_dir)
    last = held_out_windows[:, -1]
    assert np.abs(onnx_step.step(last, b)[0] - torch_step.step(last, b)[0]).max() <= 1e-5
    assert np.abs(numpy_step.step(last, a)[0] - onnx_step.step(last, a)[0]).max() <= 1e-5


def test_a_large_batch_a_nan_row_extreme_inputs_and_the_input_state(mamba_dir, held_out_windows):
    step, reference = OnnxMambaStep.load(mamba_dir), NumpyMambaStep.load(mamba_dir)
    rows = np.vstack([held_out_windows[:, 30]] * 5)  # 1,280 series: several calls of CPU_STEP_ROWS
    rows[7] = np.nan  # a candle with nothing known: the training mean, as the network's NaN rule says
    rows[8] = 1e30  # clipped, as the NumPy step clips
    rows[9] = -1e30
    state = np.random.default_rng(0).normal(size=(len(rows), step.state_size)).astype(np.float32)
    before = state.copy()
    p, new = step.step(rows, state)
    assert np.array_equal(state, before) and np.isfinite(p).all() and np.isfinite(new).all()
    p_ref, new_ref = reference.step(rows, state)
    assert np.abs(p - p_ref).max() <= 1e-5 and np.abs(new - new_ref).max() <= 1e-4
    alone = np.vstack([step.step(rows[i:i + 1], state[i:i + 1])[0] for i in (0, 7, 8, 700, 1279)])
    assert np.abs(p[[0, 7, 8, 700, 1279]] - alone).max() <= 1e-6
    empty_p, empty_state = step.step(np.empty((0, rows.shape[1])), step.initial_state(0))
    assert empty_p.shape == (0, len(step.horizons)) and empty_state.shape == (0, step.state_size)


def test_a_model_without_its_arrays_is_refused(mamba_dir, tmp_path):
    import shutil

    copy = tmp_path / "mamba"
    shutil.copytree(mamba_dir, copy)
    (copy / ARRAYS_FILE).unlink()
    with pytest.raises(ConfigError, match="no Mamba arrays"):
        OnnxMambaStep.load(copy)


def test_a_cpu_worker_serves_the_default_bundle_without_importing_pytorch(mamba_dir):
    """What a CPU worker loads: the sequence loader steps in ONNX Runtime, and PyTorch never enters the process."""
    code = ("import sys; from models.loading import _sequence_loader, serving_threads; serving_threads(); "
            f"m = _sequence_loader(None, 1)({str(mamba_dir)!r}); "
            "import numpy as np; m.step(np.zeros((2, 41)), m.initial_state(2)); "
            "print(type(m).__name__, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"},
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["OnnxMambaStep", "False"]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 7, 10, 16, 17, 31, 60])
def test_a_scan_equals_its_candles_stepped_one_by_one(mamba_dir, held_out_windows, length):
    """Every decomposition into the scan's chunks (16, 8, 4, 2, 1), through real candles with a NaN row and
    extreme values among them, from a state in the middle of the series."""
    step = OnnxMambaStep.load(mamba_dir)
    rows = held_out_windows[:, :length].copy()
    if length >= 3:
        rows[5, 1] = np.nan
        rows[6, 2] = 1e30
    _, start = step.scan(held_out_windows[:, :20], step.initial_state(len(rows)))
    before = start.copy()
    p, state = step.scan(rows, start)
    assert np.array_equal(start, before) and state is not start
    assert p.shape == (len(rows), length, len(step.horizons)) and p.dtype == np.float64
    expected = start
    for t in range(length):
        q, expected = step.step(rows[:, t], expected)
        assert np.abs(p[:, t] - q).max() <= 1e-6
    assert np.abs(state - expected).max() <= 1e-5
    # the base class's scan (one step per candle, here in NumPy) gives the same
    p_numpy, state_numpy = NumpyMambaStep.load(mamba_dir).scan(rows, start)
    assert np.abs(p - p_numpy).max(initial=0) <= 1e-5 and np.abs(state - state_numpy).max() <= 1e-4


def test_a_scan_of_many_series_is_cut_into_calls_and_rows_are_refused_in_a_wrong_shape(mamba_dir, held_out_windows):
    step = OnnxMambaStep.load(mamba_dir)
    rows = np.concatenate([held_out_windows] * 3)[:, :24]  # 768 series x 24 candles: blocks of 32 and 64 series
    p, state = step.scan(rows, step.initial_state(len(rows)))
    alone = [step.scan(rows[i:i + 1], step.initial_state(1)) for i in (0, 31, 32, 767)]
    assert np.abs(p[[0, 31, 32, 767]] - np.concatenate([a for a, _ in alone])).max() <= 1e-6
    assert np.abs(state[[0, 31, 32, 767]] - np.concatenate([s for _, s in alone])).max() <= 1e-6
    with pytest.raises(ValueError, match="scan takes"):
        step.scan(rows[:, 0], step.initial_state(len(rows)))  # (n, features): a step's rows
    with pytest.raises(ValueError, match="scan takes"):
        step.scan(rows, step.initial_state(3))
    with pytest.raises(ValueError, match="at least 2 candles"):
        scan_graph(NumpyMambaStep.load(mamba_dir), 1)  # one candle is the step's graph
