"""What the dashboard charts of the learning loop: live accuracy per model version over time, and the
loop's events (retrain requests, a candidate arriving, the serving version changing, adaptive signal threshold
changes) to mark on it.

The worker samples its partitions' learners every ``every_s`` (the rolling accuracy of each version over
the last ``window`` labelled outcomes, merged over the partitions it owns) and notes the events as they
happen; the history is this worker's view since it started, bounded in size.

>>> from learning.learner import OutcomeLearner
>>> learner = OutcomeLearner()
>>> for i in range(10):
...     _ = learner.update({"model_version": "v1", "horizon": 1, "direction_correct": i % 2 == 0}, None)
>>> history = LearningHistory()
>>> history.sample(1000.0, [learner], serving=("v1", None))
>>> history.event(1001.0, "retrain request", "v1: error_drift")
>>> history.snapshot()["samples"], [e[1:] for e in history.snapshot()["events"]]
([[1000.0, {'v1': 0.5}]], [['serving', 'v1'], ['retrain request', 'v1: error_drift']])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["LearningHistory"]


class LearningHistory:
    def __init__(self, size: int = 720, window: int = 500, events: int = 200) -> None:
        self.window = window
        self._samples: deque[list[Any]] = deque(maxlen=size)
        self._events: deque[list[Any]] = deque(maxlen=events)
        self._serving: tuple[str | None, str | None] = (None, None)

    def sample(self, now: float, learners: Iterable[Any], serving: tuple[str | None, str | None]) -> None:
        """One point: each version's horizon-1 accuracy over the last ``window`` outcomes, over ``learners``;
        ``serving`` (active version, candidate version or None) marks a change as an event."""
        active, candidate = serving
        if active != self._serving[0] and active is not None:
            self.event(now, "serving", active)
        if candidate != self._serving[1] and candidate is not None:
            self.event(now, "candidate", candidate)
        self._serving = serving
        totals: dict[str, list[int]] = {}
        for learner in learners:
            for row in learner.accuracy.snapshot():
                if row["horizon"] != 1:
                    continue
                n, correct = learner.accuracy.counts(row["model_version"], 1, self.window)
                t = totals.setdefault(row["model_version"], [0, 0])
                t[0] += n
                t[1] += correct
        point = {v: round(c / n, 4) for v, (n, c) in sorted(totals.items()) if n}
        if point:
            self._samples.append([round(now, 3), point])

    def event(self, now: float, kind: str, text: str) -> None:
        self._events.append([round(now, 3), kind, text])

    def snapshot(self) -> dict[str, Any]:
        return {"samples": list(self._samples), "events": list(self._events)}
