"""What every Mamba step model shares, whichever library steps it (:class:`~models.mamba.recurrent.MambaRecurrent`
in PyTorch, :class:`~models.mamba.numpy_step.NumpyMambaStep` in NumPy): its identity, read from ``model.json``,
the zero state of a series that has seen no candle, and :meth:`MambaStepper.step` itself — the checks, and a
large batch cut into calls of :data:`CPU_STEP_ROWS` series, each written straight into the output arrays;
a subclass supplies the step of one such call (``_step_rows``).

>>> from models.mamba.numpy_step import NumpyMambaStep
>>> step = NumpyMambaStep.load(mamba_model_dir)   # the tiny doctest model (tests/doctest_models.py)
>>> step.initial_state(2).shape == (2, step.state_size), step.version == step.metadata.version
(True, True)
>>> p, state = step.scan(np.zeros((2, 3, 41)), step.initial_state(2))   # 3 candles of 2 series
>>> p.shape, state.shape == (2, step.state_size)
((2, 3, 5), True)
"""

from __future__ import annotations

import numpy as np

from models.mamba.metadata import MambaMetadata

__all__ = ["CPU_STEP_ROWS", "MambaStepper"]

# Series per call on the CPU: a step's (rows, d_inner, d_state) temporaries (4 KB a row per layer) stay in the
# cache; 2,000 rows in one call measured 12.9 us a row in PyTorch, in calls of 512 9.7 (4,000 rows: 22.5 against 10.2).
CPU_STEP_ROWS = 512


class MambaStepper:
    """Base of the step models: ``metadata`` and ``state_size`` are set by the subclass."""

    metadata: MambaMetadata
    state_size: int

    # The most series worth one call (the batch step hands a batch's series over in groups of this many,
    # so the states in flight stay that small); None: any number (a CUDA step takes a batch at once).
    series_per_call: int | None = CPU_STEP_ROWS

    version = property(lambda self: self.metadata.version)
    name = property(lambda self: self.metadata.name)
    horizons = property(lambda self: self.metadata.horizons)
    feature_names = property(lambda self: self.metadata.feature_names)

    def initial_state(self, n: int) -> np.ndarray:
        """The state of ``n`` series that have seen no candle."""
        return np.zeros((n, self.state_size), dtype=np.float32)

    def step(self, rows: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One candle for each of ``n`` series: raw feature rows (n, n_features), NaN where unknown, and their
        states (n, ``state_size``) -> (P(up) per horizon (n, horizons) float64, the new states). ``state`` is
        not modified."""
        rows = self._checked(rows, state)
        state = np.ascontiguousarray(state, dtype=np.float32)  # rows of flat states: the steps read views of them
        p = np.empty((len(rows), len(self.horizons)), dtype=np.float64)
        new = np.empty_like(state)
        for a in range(0, len(rows), CPU_STEP_ROWS):
            b = a + CPU_STEP_ROWS
            p[a:b] = self._step_rows(rows[a:b], state[a:b], new[a:b])
        return p, new

    def scan(self, rows: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``T`` candles for each of ``n`` series: raw feature rows (n, T, n_features), oldest first, and their
        states (n, ``state_size``) -> (P(up) after each candle (n, T, horizons) float64, the states after the
        last). What ``T`` calls of :meth:`step` give (to float32 rounding); ``state`` is not modified."""
        rows = np.asarray(rows, dtype=np.float32)
        features = len(self.metadata.feature_names)
        if rows.ndim != 3 or rows.shape[2] != features or state.shape != (len(rows), self.state_size):
            raise ValueError(f"scan takes (n, T, {features}) rows and (n, {self.state_size}) states, "
                             f"got {rows.shape} and {state.shape}")
        p = np.empty((rows.shape[0], rows.shape[1], len(self.horizons)), dtype=np.float64)
        state = np.array(state, dtype=np.float32)  # a copy even for T = 0: the caller's is never the result
        return p, self._scan_into(rows, state, p)

    def _scan_into(self, rows: np.ndarray, state: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The scan of checked ``rows`` from ``state`` (the caller's copy): writes P(up) into ``p`` and
        returns the last states. Here a step per candle."""
        for t in range(rows.shape[1]):
            p[:, t], state = self.step(rows[:, t], state)
        return state

    def _checked(self, rows: np.ndarray, state: np.ndarray) -> np.ndarray:
        """``rows`` as float32; ValueError unless rows and states are (n, n_features) and (n, state_size)."""
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != len(self.metadata.feature_names) or state.shape != (len(rows), self.state_size):
            raise ValueError(f"step takes (n, {len(self.metadata.feature_names)}) rows and (n, {self.state_size}) "
                             f"states, got {rows.shape} and {state.shape}")
        return rows

    def _step_rows(self, rows: np.ndarray, state: np.ndarray, new: np.ndarray) -> np.ndarray:
        """The step of at most :data:`CPU_STEP_ROWS` series: writes their new states into ``new`` (rows of the
        output array) and returns their P(up) per horizon."""
        raise NotImplementedError
