"""What every Mamba step model shares, whichever library steps it (:class:`~models.mamba.recurrent.MambaRecurrent`
in PyTorch, :class:`~models.mamba.numpy_step.NumpyMambaStep` in NumPy): its identity, read from ``model.json``,
and the zero state of a series that has seen no candle. The ensemble's ``steps`` members need nothing more
besides ``step(rows, states)``.

>>> from models.mamba.numpy_step import NumpyMambaStep
>>> step = NumpyMambaStep.load(mamba_model_dir)   # the tiny doctest model (tests/doctest_models.py)
>>> step.initial_state(2).shape == (2, step.state_size), step.version == step.metadata.version
(True, True)
"""

from __future__ import annotations

import numpy as np

from models.mamba.metadata import MambaMetadata

__all__ = ["MambaStepper"]


class MambaStepper:
    """Base of the step models: ``metadata`` and ``state_size`` are set by the subclass."""

    metadata: MambaMetadata
    state_size: int

    version = property(lambda self: self.metadata.version)
    name = property(lambda self: self.metadata.name)
    horizons = property(lambda self: self.metadata.horizons)
    feature_names = property(lambda self: self.metadata.feature_names)

    def initial_state(self, n: int) -> np.ndarray:
        """The state of ``n`` series that have seen no candle."""
        return np.zeros((n, self.state_size), dtype=np.float32)
