"""Accuracy per (model version, horizon): rolling windows of the last outcomes, and totals since start.

Only outcomes with a verdict count (``direction_correct`` True/False): trade results without one and exact
ties (see :mod:`learning.labelling`) are skipped, the same rows training leaves out of its accuracy.
:meth:`AccuracyTracker.snapshot` is the plain-dict view a Faust web view or a metrics exporter serves.

>>> acc = AccuracyTracker(windows=(2, 4))
>>> for ok in (True, False, True, True):
...     _ = acc.update({"model_version": "v1", "horizon": 1, "direction_correct": ok})
>>> acc.update({"model_version": "v1", "horizon": 1, "direction_correct": None})
False
>>> acc.accuracy("v1", 1), acc.accuracy("v1", 1, window=2), acc.accuracy("v1", 1, window=None)
(0.75, 1.0, 0.75)
>>> snap = AccuracyTracker.from_bytes(acc.to_bytes()).snapshot()
>>> snap == acc.snapshot(), snap[0]["windows"]["2"]
(True, {'n': 2, 'accuracy': 1.0})
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from learning._state import dump_state, load_state

__all__ = ["AccuracyTracker"]

_FORMAT = 1


class _Series:
    __slots__ = ("recent", "n", "correct")

    def __init__(self, size: int) -> None:
        self.recent: deque[int] = deque(maxlen=size)
        self.n = self.correct = 0


class AccuracyTracker:
    """Rolling and total accuracy of every (model version, horizon) seen; ``windows`` in outcomes."""

    def __init__(self, windows: Sequence[int] = (100, 500)) -> None:
        if not windows or min(windows) < 1:
            raise ValueError(f"windows must be positive sizes, got {windows}")
        self.windows = tuple(sorted(set(int(w) for w in windows)))
        self._series: dict[tuple[str, int], _Series] = {}

    def update(self, outcome: Mapping[str, Any]) -> bool:
        """Count one Outcome record; False if it carries no verdict."""
        correct = outcome.get("direction_correct")
        if correct is None:
            return False
        key = (str(outcome.get("model_version")), int(outcome["horizon"]))
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series(self.windows[-1])
        s.recent.append(int(bool(correct)))
        s.n += 1
        s.correct += int(bool(correct))
        return True

    def counts(self, model_version: str, horizon: int, window: int | None = None) -> tuple[int, int]:
        """``(n, correct)`` over the last ``window`` outcomes, or since start with ``window=None``."""
        s = self._series.get((model_version, horizon))
        if s is None:
            return 0, 0
        if window is None:
            return s.n, s.correct
        if window > self.windows[-1]:
            raise ValueError(f"window {window} is longer than the longest kept ({self.windows[-1]})")
        n = min(window, len(s.recent))
        return n, sum(islice(reversed(s.recent), n))

    def accuracy(self, model_version: str, horizon: int, window: int | None | str = "max") -> float:
        """Accuracy over the longest window by default; NaN before the first outcome."""
        n, correct = self.counts(model_version, horizon, self.windows[-1] if window == "max" else window)
        return correct / n if n else float("nan")

    def snapshot(self) -> list[dict[str, Any]]:
        """One plain dict per (version, horizon), sorted: totals and every window (JSON-ready)."""
        out = []
        for (version, horizon), s in sorted(self._series.items()):
            wins = {}
            for w in self.windows:
                n, correct = self.counts(version, horizon, w)
                wins[str(w)] = {"n": n, "accuracy": correct / n if n else None}
            out.append({"model_version": version, "horizon": horizon, "total_n": s.n,
                        "total_accuracy": s.correct / s.n if s.n else None, "windows": wins})
        return out

    def to_bytes(self) -> bytes:
        series = [[v, h, s.n, s.correct, "".join(map(str, s.recent))] for (v, h), s in self._series.items()]
        return dump_state("accuracy", _FORMAT, {"windows": self.windows, "series": series})

    @classmethod
    def from_bytes(cls, blob: bytes) -> AccuracyTracker:
        s = load_state("accuracy", _FORMAT, blob)
        tracker = cls(s["windows"])
        for version, horizon, n, correct, bits in s["series"]:
            series = tracker._series[(version, horizon)] = _Series(tracker.windows[-1])
            series.n, series.correct = n, correct
            series.recent.extend(int(b) for b in bits)
        return tracker
