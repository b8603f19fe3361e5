"""Mamba in recurrent step mode against the full-window forward, on real windows of a pair it never saw."""

from __future__ import annotations

import numpy as np
import pytest

from models.mamba import MambaModel
from models.mamba.recurrent import MambaRecurrent


def test_stepping_a_window_from_the_zero_state_equals_the_window_forward(mamba_dir, held_out_windows):
    rec = MambaRecurrent.load(mamba_dir)
    state = rec.initial_state(len(held_out_windows))
    for t in range(held_out_windows.shape[1]):  # all 256 series in one call per step
        p, state = rec.step(held_out_windows[:, t], state)
    onnx = MambaModel.load(mamba_dir).predict_proba(held_out_windows)
    torch_window = MambaModel.load(mamba_dir, backend="torch").predict_proba(held_out_windows)
    assert np.abs(p - torch_window).max() <= 1e-5
    assert np.abs(p - onnx).max() <= 1e-5
    assert p.std() > 1e-3  # a trained model: the windows do not all give one answer


def test_a_step_leaves_its_input_state_alone_and_rows_do_not_mix(mamba_dir, held_out_windows):
    rec = MambaRecurrent.load(mamba_dir)
    state = rec.initial_state(len(held_out_windows))
    for t in range(30):
        _, state = rec.step(held_out_windows[:, t], state)
    before = state.copy()
    together, _ = rec.step(held_out_windows[:, 30], state)
    assert np.array_equal(state, before)
    alone = np.vstack([rec.step(held_out_windows[i:i + 1, 30], state[i:i + 1])[0] for i in range(0, 256, 37)])
    assert np.abs(together[::37] - alone).max() <= 1e-6


def test_bad_shapes_are_refused(mamba_dir):
    rec = MambaRecurrent.load(mamba_dir)
    with pytest.raises(ValueError, match="step takes"):
        rec.step(np.zeros((2, 41)), rec.initial_state(3))


def test_a_batch_larger_than_one_cpu_call_equals_one_call(mamba_dir, held_out_windows, monkeypatch):
    """The CPU step cuts a large batch into calls of CPU_STEP_ROWS series (cache-sized temporaries): the
    rows and states that come out are the ones a single call gives."""
    import models.mamba.stepper as stepper

    rec = MambaRecurrent.load(mamba_dir)
    n = 2 * stepper.CPU_STEP_ROWS + 76
    rows = np.vstack([held_out_windows[:, 40]] * (n // len(held_out_windows) + 1))[:n]
    state = rec.initial_state(n)
    for t in range(5):
        _, state = rec.step(np.vstack([held_out_windows[:, t]] * (n // len(held_out_windows) + 1))[:n], state)
    cut_p, cut_state = rec.step(rows, state)
    monkeypatch.setattr(stepper, "CPU_STEP_ROWS", n)
    whole_p, whole_state = rec.step(rows, state)
    assert np.abs(cut_p - whole_p).max() <= 1e-6 and np.abs(cut_state - whole_state).max() <= 1e-6
    assert cut_state.shape == (n, rec.state_size) and cut_p.shape == (n, len(rec.horizons))
