"""Percentiles over a recent window of samples: the one home of latency windows (web views, sinks, models).

Nearest-rank percentiles over the last ``size`` samples, in whatever unit the caller adds (the worker's
stats add milliseconds, the sinks seconds): old samples fall out, so the numbers describe *now*.

>>> w = LatencyWindow(size=100)
>>> for ms in range(1, 201):
...     w.add(float(ms))
>>> w.percentile(50), w.percentile(99), w.summary()
(150.0, 199.0, {'p50': 150.0, 'p99': 199.0, 'count': 100})
>>> LatencyWindow().summary()
{'p50': None, 'p99': None, 'count': 0}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["LatencyWindow", "percentile"]


def percentile(values: Any, q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None for no values.

    >>> percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50), percentile([], 99)
    (3.0, None)
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats
    return ordered[int(rank) - 1]


class LatencyWindow:
    """The last ``size`` samples with nearest-rank percentiles (module docstring)."""

    def __init__(self, size: int = 4096) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: float, times: int = 1) -> None:
        """One sample, or ``times`` equal ones (a batch's rows that all waited as long)."""
        if times == 1:
            self._values.append(value)
        else:
            self._values.extend([value] * min(times, self._values.maxlen or times))

    def extend(self, values: Iterable[float]) -> None:
        self._values.extend(values)

    def values(self) -> list[float]:
        """The samples in the window, oldest first (a copy)."""
        return list(self._values)

    def percentile(self, q: float) -> float | None:
        return percentile(self._values, q)

    def summary(self) -> dict[str, float | int | None]:
        ordered = sorted(self._values)
        return {"p50": percentile(ordered, 50), "p99": percentile(ordered, 99), "count": len(ordered)}
