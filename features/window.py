"""The window of recent feature vectors a series keeps for sequence models, and its buffer.

A state's window is a ring of ``WINDOW`` rows once full, and never wraps before: while it fills, its
rows so far are ``[0, count)``, so a buffer can start small and grow (most series of a
hundred-thousand-symbol feed are cold, and a full window would be ~10 KB each for one candle).

>>> window_buffer(1).shape, window_buffer(5).shape, window_buffer(33).shape, window_buffer(200).shape
((4, 41), (8, 41), (60, 41), (60, 41))
"""

from __future__ import annotations

import numpy as np

from features.names import N_FEATURES

__all__ = ["WINDOW", "window_buffer"]

WINDOW = 60  # feature vectors kept for sequence models
_FIRST_ROWS = 4


def window_buffer(rows: int) -> np.ndarray:
    """A NaN float32 window that holds ``rows`` vectors without growing: 4, 8, 16, 32 or ``WINDOW`` rows."""
    size = _FIRST_ROWS
    while size < rows and size < WINDOW:
        size = min(2 * size, WINDOW)
    return np.full((size, N_FEATURES), np.nan, dtype=np.float32)
