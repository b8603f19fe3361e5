"""Serving within a latency budget: the full model, else its distilled student, else the full model anyway.

The model-selection chain of the batch step (:func:`streams.step.process_batch`): a batch is scored by
the full model (the ONNX ensemble with its sequence member) unless its estimated cost exceeds the budget
(``CANDLEFLOW_SCORE_BUDGET_MS``: a burst of thousands of symbols closing at once, a slow GPU); then it is
served by the model's distilled student (``model.student``: ``<bundle>/student/``, attached by
:func:`models.loading.load_model`, written by ``candleflow distill``). A model without a student serves
over budget too (the fallback, logged once per version). Each prediction's ``model_version`` names the
model that served it; :meth:`ServingChain.snapshot` (``/stats``, ``/models``) counts the candles each
served, the batches over budget and the current estimate.

The estimate, per full-model version, is ``cost(n) = a + b n`` for a batch of ``n`` candles (a call's
overhead, a row's cost), the least-squares line through the batches this process scored with it
(exponentially decayed sums: O(1) per batch, the last few dozen batches count). While their sizes have
not varied enough to fit a line, it is the shape of the model's cost from the student's distillation
report (the teacher's cost per row at batch 1 and 1,000; without a report a cost per row) scaled to the
seconds measured. Until the model has scored a batch here, the estimate is unknown and it serves.

Replay and ``POST /predict`` build no chain: they score with the full model, deterministic.

>>> class Model:
...     version, student, distillation = "full", None, None
>>> class Student:
...     version = "small"
>>> full = Model(); full.student = Student()
>>> chain = ServingChain(budget_ms=10)
>>> chain.route([full] * 3)[1]                 # nothing measured yet: the full model serves
{}
>>> chain.observe([(full, 100, 0.005)], {})    # 100 rows in 5 ms: 50 us a row
>>> chain.route([full] * 100)[1], chain.estimate_ms(full, 400)
({}, 20.0)
>>> serving, routed = chain.route([full] * 400)  # 20 ms > 10 ms: the student serves
>>> {m.version for m in serving}, routed == {id(full.student): full}
({'small'}, True)
>>> chain.observe([(full.student, 400, 0.001)], routed)
>>> s = chain.snapshot(); s["served"], s["over_budget_batches"], s["estimate"]["full"]["rows_within_budget"]
({'full': 100, 'student': 400}, 1, 200)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["CostEstimate", "ServingChain", "step_versions"]

log = logging.getLogger(__name__)

DECAY = 0.95  # per batch scored: the estimate follows the last ~20-40 batches (a GPU turning slow, a busy host)
_PRIOR_ROWS = 1000  # the distillation report's second batch size


class CostEstimate:
    """``cost(n) = a + b n`` seconds for a batch of ``n`` rows of one model (see the module), fitted on the
    batches this process scored with it: a least-squares line over exponentially decayed sums (O(1) per
    batch) once their sizes vary enough to tell a call's overhead from a row's cost; until then the
    ``prior`` shape ``a0 + b0 n`` (the distillation report's; without one a cost per row) scaled to the
    seconds measured.

    >>> e = CostEstimate(prior=(100e-6, 10e-6))      # the report: 100 us a call plus 10 us a row
    >>> e.seconds(10) is None                          # nothing measured here yet
    True
    >>> e.add(10, 0.0004); round(e.seconds(1000) * 1e3, 3), e.fit  # one size: the shape, this host 2x slower
    (20.2, 'prior')
    >>> e = CostEstimate()
    >>> for n in (1, 50, 200, 10, 100):               # sizes that vary: this host's line, 50 us + 20 us a row
    ...     e.add(n, 50e-6 + 20e-6 * n)
    >>> round(e.seconds(1000) * 1e3, 3), e.fit, e.rows_within(0.01)
    (20.05, 'line', 497)
    """

    __slots__ = ("prior", "_w", "_n", "_s", "_nn", "_ns", "batches")

    def __init__(self, prior: tuple[float, float] = (0.0, 1.0)) -> None:
        self.prior = prior
        self._w = self._n = self._s = self._nn = self._ns = 0.0
        self.batches = 0

    @classmethod
    def from_report(cls, report: Mapping[str, Any] | None) -> CostEstimate:
        """The prior shape from a distillation report's ``teacher_us_per_row`` (batch 1 and batch 1,000)."""
        try:
            one = float(report["teacher_us_per_row"]["batch_1"]) * 1e-6  # type: ignore[index]
            many = float(report["teacher_us_per_row"][f"batch_{_PRIOR_ROWS}"]) * 1e-6  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return cls()
        b = (many * _PRIOR_ROWS - one) / (_PRIOR_ROWS - 1)
        if not b > 0:
            return cls()
        return cls((max(one - b, 0.0), b))

    def add(self, rows: int, seconds: float) -> None:
        d = DECAY
        self._w = d * self._w + 1.0
        self._n = d * self._n + rows
        self._s = d * self._s + seconds
        self._nn = d * self._nn + rows * rows
        self._ns = d * self._ns + rows * seconds
        self.batches += 1

    def line(self) -> tuple[float, float, str] | None:
        """(a, b, how): the fitted line (``"line"``) or the prior scaled (``"prior"``); None: no batch yet."""
        w = self._w
        if w <= 0:
            return None
        mean_n, mean_s = self._n / w, self._s / w
        var = self._nn / w - mean_n * mean_n
        if var > max(1.0, (0.1 * mean_n) ** 2):  # sizes vary: the line itself
            b = (self._ns / w - mean_n * mean_s) / var
            if b > 0:
                a = mean_s - b * mean_n
                if a >= 0:
                    return a, b, "line"
                return 0.0, self._ns / self._nn, "line"  # through the origin: no overhead to speak of
        a0, b0 = self.prior
        scale = self._s / (a0 * w + b0 * self._n)
        return scale * a0, scale * b0, "prior"

    @property
    def fit(self) -> str | None:
        line = self.line()
        return None if line is None else line[2]

    def seconds(self, rows: int) -> float | None:
        line = self.line()
        return None if line is None else line[0] + line[1] * rows

    def rows_within(self, budget_s: float) -> int | None:
        """The largest batch whose estimate is within ``budget_s`` (None: unknown)."""
        line = self.line()
        if line is None or line[1] <= 0:
            return None
        return max(int((budget_s - line[0]) / line[1]), 0)


class ServingChain:
    """The chain of one process (a worker's batch step): see the module. ``budget_ms`` None or 0: off
    (the full model always serves; the candles it serves are still counted and its cost estimated)."""

    def __init__(self, budget_ms: float | None = None) -> None:
        self.budget_s = budget_ms / 1000.0 if budget_ms else None
        self._costs: dict[str, CostEstimate] = {}
        self.served = {"full": 0, "student": 0}
        self.over_budget_batches = 0
        self.fallback_batches = 0  # over budget, but no student: the full model served
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # the step may run in an executor thread while a web view reads

    def _cost(self, model: Any) -> CostEstimate:
        cost = self._costs.get(model.version)
        if cost is None:
            student = getattr(model, "student", None)
            cost = self._costs[model.version] = CostEstimate.from_report(getattr(student, "distillation", None))
            if len(self._costs) > 8:  # versions long gone (hot reloads): keep the newest
                del self._costs[next(iter(self._costs))]
        return cost

    def estimate_ms(self, model: Any, rows: int) -> float | None:
        with self._lock:
            seconds = self._cost(model).seconds(rows)
        return None if seconds is None else round(seconds * 1000, 3)

    def route(self, serving: list[Any]) -> tuple[list[Any], dict[int, Any]]:
        """``serving`` (each candle's full model) with the students in where the batch's estimated cost
        exceeds the budget, and {id(student): the full model it stands in for} (empty: none). Per batch,
        not per candle: one estimate per distinct model."""
        if self.budget_s is None or not serving:
            return serving, {}
        first = serving[0]
        n_first = serving.count(first)  # counted in C: no Python per candle
        if n_first == len(serving):  # one model serves the batch (the usual case)
            counts = {id(first): (first, n_first)}
        else:  # an A/B split: the active model and a candidate
            counts = {id(m): (m, serving.count(m)) for m in dict.fromkeys(serving)}
        total = 0.0
        with self._lock:
            for model, n in counts.values():
                seconds = self._cost(model).seconds(n)
                if seconds is None:
                    return serving, {}  # a model not measured yet: it serves, and is measured
                total += seconds
        if total <= self.budget_s:
            return serving, {}
        swap: dict[int, Any] = {}
        routed: dict[int, Any] = {}
        for model, _ in counts.values():
            student = getattr(model, "student", None)
            if student is None:
                if model.version not in self._warned:
                    self._warned.add(model.version)
                    log.warning("a batch of %s is estimated at %.0f ms, over the %.0f ms budget, and it has no "
                                "distilled student: it serves anyway (candleflow distill writes one)",
                                model.version, total * 1000, self.budget_s * 1000)
                continue
            swap[id(model)] = student
            routed[id(student)] = model
        with self._lock:
            self.over_budget_batches += 1
            self.fallback_batches += not routed
        if not routed:
            return serving, {}
        return [swap.get(id(m), m) for m in serving], routed

    def observe(self, timings: Iterable[tuple[Any, int, float]], routed: Mapping[int, Any]) -> None:
        """The models' calls of one batch: (model, rows, seconds) each (:func:`streams.scoring.model_outputs`).
        A full model's call refines its estimate; every call counts the candles its model served."""
        with self._lock:
            for model, rows, seconds in timings:
                if id(model) in routed:
                    self.served["student"] += rows
                else:
                    self.served["full"] += rows
                    self._cost(model).add(rows, seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            estimate = {}
            for version, cost in self._costs.items():
                one, many = cost.seconds(1), cost.seconds(_PRIOR_ROWS)
                estimate[version] = {
                    "batches": cost.batches, "fit": cost.fit,
                    "us_per_row_batch_1": None if one is None else round(one * 1e6, 1),
                    f"us_per_row_batch_{_PRIOR_ROWS}": None if many is None else round(many / _PRIOR_ROWS * 1e6, 2),
                    "rows_within_budget": cost.rows_within(self.budget_s) if self.budget_s else None}
            return {"budget_ms": None if self.budget_s is None else round(self.budget_s * 1000, 3),
                    "served": dict(self.served), "over_budget_batches": self.over_budget_batches,
                    "fallback_batches": self.fallback_batches, "estimate": estimate}


def step_versions(model: Any) -> Sequence[str]:
    """The versions of ``model``'s step members (whose per-series states a student's candles leave behind)."""
    return [m.model.version for m in getattr(model, "step_members", ())]
