"""Feature windows as the Mamba model takes them: (n, 60, n_features) float32, oldest step first.

Padding rule: a window shorter than 60 steps (a series still warming up, or restarted after a long gap:
``FeatureState.window(60)`` then holds fewer vectors) is **left**-padded with NaN rows. The model's NaN
rule turns them into zeros after normalisation, i.e. "nothing known about those steps", the same value a
missing feature gets; the real steps stay the most recent ones, where the last-step pooling reads.
A window longer than 60 keeps its last 60 steps.

>>> import numpy as np
>>> w = pad_windows(np.ones((2, 3, 4)), length=5)
>>> w.shape, w.dtype, bool(np.isnan(w[:, :2]).all()), bool((w[:, 2:] == 1).all())
((2, 5, 4), dtype('float32'), True, True)
>>> pad_windows([np.ones((1, 4)), np.ones((7, 4))], length=5).shape    # mixed lengths
(2, 5, 4)
>>> pad_windows(np.ones((3, 4)), length=5).shape                        # one window
(1, 5, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.window import WINDOW  # the feature state's window: what a sequence model reads

__all__ = ["WINDOW", "pad_windows"]



def pad_windows(windows: np.ndarray | Sequence[np.ndarray], length: int = WINDOW,
                n_features: int | None = None) -> np.ndarray:
    """Windows -> a float32 array (n, length, n_features), left-padded with NaN (see the module doc).

    ``windows``: an array (n, k, f), one window (k, f), or a sequence of (k_i, f) arrays.
    ValueError if the feature count is not ``n_features`` (when given) or the shapes are not windows.
    """
    if isinstance(windows, np.ndarray):
        if windows.ndim == 2:
            windows = windows[None]
        if windows.ndim != 3:
            raise ValueError(f"expected windows of shape (n, k, features), got {windows.shape}")
        parts = list(windows)
        f = windows.shape[2]
    else:
        parts = [np.asarray(w) for w in windows]
        if any(p.ndim != 2 for p in parts):
            raise ValueError("every window must be a 2-D array (steps, features)")
        f = parts[0].shape[1] if parts else (n_features or 0)
    if n_features is not None and f != n_features:
        raise ValueError(f"expected {n_features} features per step, got {f}")
    out = np.full((len(parts), length, f), np.nan, dtype=np.float32)
    for i, w in enumerate(parts):
        if w.shape[1] != f:
            raise ValueError(f"window {i} has {w.shape[1]} features, expected {f}")
        k = min(len(w), length)
        if k:
            out[i, length - k:] = w[len(w) - k:]
    return out
