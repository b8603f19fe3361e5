"""The Mamba step in NumPy (models/mamba/numpy_step.py) against the PyTorch step of the same trained weights."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from models.mamba.metadata import ARRAYS_FILE
from models.mamba.numpy_step import NUMPY_PROVIDER, NumpyMambaStep
from models.mamba.recurrent import MambaRecurrent


def test_numpy_steps_equal_the_pytorch_steps_through_real_windows(mamba_dir, held_out_windows):
    numpy_step, torch_step = NumpyMambaStep.load(mamba_dir), MambaRecurrent.load(mamba_dir, device="cpu")
    assert numpy_step.state_size == torch_step.state_size and numpy_step.provider == NUMPY_PROVIDER
    a = b = numpy_step.initial_state(len(held_out_windows))
    for t in range(held_out_windows.shape[1]):  # all 256 series per call, 60 candles: errors would pile up in the state
        p_numpy, a = numpy_step.step(held_out_windows[:, t], a)
        p_torch, b = torch_step.step(held_out_windows[:, t], b)
        assert np.abs(p_numpy - p_torch).max() <= 1e-5
    assert np.abs(a - b).max() <= 1e-4 and p_numpy.std() > 1e-3
    # one layout: a state left by one steps on in the other (a worker restarted on the other path)
    assert np.abs(numpy_step.step(held_out_windows[:, -1], b)[0] - torch_step.step(held_out_windows[:, -1], b)[0]).max() <= 1e-5


def test_a_large_batch_a_nan_row_and_the_input_state(mamba_dir, held_out_windows):
    step = NumpyMambaStep.load(mamba_dir)
    rows = np.vstack([held_out_windows[:, 30]] * 5)  # 1,280 series: several calls of CPU_STEP_ROWS
    rows[7] = np.nan  # a candle with nothing known: the training mean, as the network's NaN rule says
    state = np.random.default_rng(0).normal(size=(len(rows), step.state_size)).astype(np.float32)
    before = state.copy()
    p, new = step.step(rows, state)
    assert np.array_equal(state, before) and np.isfinite(p).all() and np.isfinite(new).all()
    alone = np.vstack([step.step(rows[i:i + 1], state[i:i + 1])[0] for i in (0, 7, 700, 1279)])
    assert np.abs(p[[0, 7, 700, 1279]] - alone).max() <= 1e-6


def test_arrays_that_do_not_match_the_metadata_are_refused(mamba_dir, tmp_path):
    import shutil

    copy = tmp_path / "mamba"
    shutil.copytree(mamba_dir, copy)
    (copy / ARRAYS_FILE).write_bytes((copy / ARRAYS_FILE).read_bytes()[:-1] + b"x")
    with pytest.raises(ConfigError, match="does not match"):
        NumpyMambaStep.load(copy)
    (copy / ARRAYS_FILE).unlink()
    with pytest.raises(ConfigError, match="no Mamba arrays"):
        NumpyMambaStep.load(copy)

