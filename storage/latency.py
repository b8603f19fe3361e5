"""Percentiles and rates over a recent window of samples, cheap enough to update per batch.

>>> w = LatencyWindow(size=100)
>>> for ms in range(1, 101):
...     w.add(ms / 1000)
>>> round(w.percentile(50) * 1000), round(w.percentile(99) * 1000)
(50, 99)
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["LatencyWindow"]


class LatencyWindow:
    """The last ``size`` durations (seconds); old ones fall out so the numbers describe *now*."""

    def __init__(self, size: int = 2048) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float, times: int = 1) -> None:
        for _ in range(min(times, self._samples.maxlen or times)):
            self._samples.append(seconds)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile; NaN with no samples."""
        if not self._samples:
            return math.nan
        ordered = sorted(self._samples)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]

    def summary_ms(self) -> dict[str, float]:
        return {"p50_ms": round(self.percentile(50) * 1000, 3), "p99_ms": round(self.percentile(99) * 1000, 3)}
