"""A/B promotion: route a share of symbols to a candidate version, then promote or roll it back on evidence.

- :func:`assign_version`: a symbol goes to the candidate when a stable hash of (candidate, symbol) falls
  below ``share``. Stable across processes and restarts (SHA-256, not Python's salted ``hash``), so a
  symbol never flips between versions mid-experiment; salted with the candidate so each experiment
  draws its own subset; monotone in ``share``, so raising it only adds symbols.
- :class:`PromotionJudge` counts right/wrong outcomes per arm since the experiment began and, once both
  arms have ``min_outcomes``, decides with a one-sided two-proportion z-test:

  * **promote** when ``H0: p_cand - p_active <= margin`` is rejected at ``alpha`` (z uses the unpooled
    standard error, the right one for a non-zero margin): the candidate is better *by at least the
    margin*, not merely better;
  * **roll back** when ``H0: p_cand >= p_active`` is rejected at ``rollback_alpha`` (pooled z): clearly worse;
  * **roll back as inconclusive** once ``max_outcomes`` per arm pass without a decision, so an experiment
    cannot run forever; otherwise **continue**.

  Checking after every outcome is repeated testing, which inflates the error rate above ``alpha``; the
  judge therefore only decides every ``check_every`` outcomes (docs/learning.md has the caveat).

Every decision, continue included, is a record with its numbers.

>>> assign_version("ETH-BTC", "v1", "v2", share=0.0), assign_version("ETH-BTC", "v1", "v2", share=1.0)
('v1', 'v2')
>>> judge = PromotionJudge("v1", "v2", min_outcomes=1000, check_every=100)
>>> for i in range(3000):
...     _ = judge.update({"model_version": "v1", "horizon": 1, "direction_correct": i % 100 < 52})
...     d = judge.update({"model_version": "v2", "horizon": 1, "direction_correct": i % 100 < 57})
...     if d and d["decision"] != "continue":
...         break
>>> d["decision"], d["n_candidate"], round(d["accuracy_candidate"] - d["accuracy_active"], 3), d["p_value"] < 0.05
('promote', 1000, 0.05, True)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from learning._state import dump_state, load_state

__all__ = ["PairedJudge", "PromotionJudge", "assign_version", "paired_z", "two_proportion_z"]

_FORMAT = 1


def assign_version(symbol: str, active: str, candidate: str | None, share: float) -> str:
    """The version that serves ``symbol``: ``candidate`` for a stable ``share`` of symbols, else ``active``.

    >>> symbols = [f"S{i}-BTC" for i in range(1000)]
    >>> sum(assign_version(s, "v1", "v2", 0.2) == "v2" for s in symbols)
    193
    """
    if candidate is None or share <= 0.0:
        return active
    digest = hashlib.sha256(f"{candidate}\x00{symbol}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64  # uniform in [0, 1)
    return candidate if u < share else active


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))  # P(Z > z); exact enough without SciPy


def two_proportion_z(k_a: int, n_a: int, k_b: int, n_b: int, margin: float = 0.0) -> tuple[float, float]:
    """One-sided test of ``H0: p_b - p_a <= margin`` vs ``H1: p_b - p_a > margin``: ``(z, p_value)``.
    Pooled standard error for ``margin == 0`` (the textbook test), unpooled otherwise.

    >>> z, p = two_proportion_z(500, 1000, 560, 1000)
    >>> round(z, 2), round(p, 4)
    (2.69, 0.0036)
    """
    pa, pb = k_a / n_a, k_b / n_b
    if margin == 0.0:
        pool = (k_a + k_b) / (n_a + n_b)
        se = math.sqrt(pool * (1 - pool) * (1 / n_a + 1 / n_b))
    else:
        se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    if se == 0.0:  # both arms all right or all wrong: no evidence either way beyond the raw difference
        diff = pb - pa - margin
        return (math.inf, 0.0) if diff > 0 else (-math.inf, 1.0) if diff < 0 else (0.0, 0.5)
    z = (pb - pa - margin) / se
    return z, _normal_sf(z)


class PromotionJudge:
    """Evidence and decisions of one A/B experiment (active vs candidate); see the module docstring."""

    def __init__(self, active: str, candidate: str, min_outcomes: int = 1000, margin: float = 0.005,
                 alpha: float = 0.05, rollback_alpha: float = 0.01, max_outcomes: int | None = 50_000,
                 check_every: int = 100, horizon: int | None = None) -> None:
        self.active, self.candidate, self.horizon = active, candidate, horizon
        self.min_outcomes, self.margin, self.alpha, self.rollback_alpha = min_outcomes, margin, alpha, rollback_alpha
        self.max_outcomes, self.check_every = max_outcomes, check_every
        self.n = {active: 0, candidate: 0}
        self.correct = {active: 0, candidate: 0}
        self.decided: dict[str, Any] | None = None  # the final decision, once made
        self._since_check = 0

    def update(self, outcome: Mapping[str, Any]) -> dict[str, Any] | None:
        """Count one Outcome; a decision record every ``check_every`` counted outcomes, else None.
        After a final decision (promote / rollback) the experiment is over and nothing more is counted."""
        version, verdict = outcome.get("model_version"), outcome.get("direction_correct")
        if self.decided or version not in self.n or verdict is None:
            return None
        if self.horizon is not None and outcome.get("horizon") != self.horizon:
            return None
        if not self._count(outcome, version, bool(verdict)):
            return None
        self._since_check += 1
        if self._since_check < self.check_every:
            return None
        self._since_check = 0
        return self.decide()

    def _count(self, outcome: Mapping[str, Any], version: str, right: bool) -> bool:
        """Add one outcome's evidence; True when it counts towards ``check_every``."""
        self.n[version] += 1
        self.correct[version] += int(right)
        return True

    def decide(self) -> dict[str, Any]:
        """The decision on the evidence so far (a record; final ones are also kept in ``decided``)."""
        na, nc = self.n[self.active], self.n[self.candidate]
        ka, kc = self.correct[self.active], self.correct[self.candidate]
        record: dict[str, Any] = {
            "active": self.active, "candidate": self.candidate, "n_active": na, "n_candidate": nc,
            "accuracy_active": ka / na if na else None, "accuracy_candidate": kc / nc if nc else None,
            "margin": self.margin, "alpha": self.alpha, "rollback_alpha": self.rollback_alpha,
            "min_outcomes": self.min_outcomes, "z": None, "p_value": None, "z_worse": None, "p_worse": None,
        }
        if min(na, nc) < self.min_outcomes:
            return {**record, "decision": "continue", "reason": "too few outcomes"}
        z, p = two_proportion_z(ka, na, kc, nc, self.margin)
        z_worse, p_worse = two_proportion_z(kc, nc, ka, na)  # H1: p_active > p_candidate
        record.update(z=z, p_value=p, z_worse=z_worse, p_worse=p_worse)
        if p < self.alpha:
            decision, reason = "promote", f"candidate better by more than {self.margin:.3%} (p={p:.3g})"
        elif p_worse < self.rollback_alpha:
            decision, reason = "rollback", f"candidate worse (p={p_worse:.3g})"
        elif self.max_outcomes is not None and min(na, nc) >= self.max_outcomes:
            decision, reason = "rollback", f"inconclusive after {min(na, nc)} outcomes per arm"
        else:
            return {**record, "decision": "continue", "reason": "not significant yet"}
        self.decided = {**record, "decision": decision, "reason": reason}
        return self.decided

    def to_bytes(self) -> bytes:
        return dump_state("promotion", _FORMAT, {k: v for k, v in vars(self).items()})

    @classmethod
    def from_bytes(cls, blob: bytes) -> PromotionJudge:
        s = load_state("promotion", _FORMAT, blob)
        judge = cls.__new__(cls)
        vars(judge).update(s)
        return judge


def paired_z(b: int, c: int, n: int, margin: float = 0.0) -> tuple[float, float]:
    """One-sided paired test on ``n`` pairs of verdicts, ``b`` where only the first model was right and
    ``c`` where only the second was: ``H0: mean(c - b) / n <= margin``. McNemar's test for ``margin == 0``
    (its normal form, ``(c - b) / sqrt(b + c)``); with a margin, the paired difference's own standard error.

    >>> z, p = paired_z(b=40, c=80, n=1000)
    >>> round(z, 2), p < 0.001
    (3.65, True)
    """
    if n == 0 or b + c == 0:
        return 0.0, 0.5
    d = (c - b) / n
    if margin == 0.0:
        z = (c - b) / math.sqrt(b + c)
    else:
        se = math.sqrt(max((b + c) / n - d * d, 1e-12) / n)
        z = (d - margin) / se
    return z, _normal_sf(z)


class PairedJudge(PromotionJudge):
    """Champion/challenger on the *same* candles: the candidate scores every symbol in shadow, and each of
    its outcomes is paired with the active version's outcome of the same (symbol, timeframe, open time,
    horizon). Only the pairs where exactly one was right carry evidence (McNemar): promote when the
    candidate's paired advantage exceeds ``margin`` at ``alpha``, roll back when it is worse at
    ``rollback_alpha``, or inconclusive after ``max_outcomes`` pairs. The same thresholds and decision
    records as :class:`PromotionJudge` (``n_*`` count pairs); per-symbol luck cannot decide, since both
    versions are judged on every symbol alike.

    >>> judge = PairedJudge("v1", "v2", min_outcomes=500, check_every=100)
    >>> for i in range(2000):
    ...     o = {"symbol": f"S{i % 7}", "timeframe": "5m", "open_time": i, "horizon": 1}
    ...     _ = judge.update({**o, "model_version": "v1", "direction_correct": i % 100 < 52})
    ...     d = judge.update({**o, "model_version": "v2", "direction_correct": i % 100 < 52 or i % 100 >= 95})
    ...     if d and d["decision"] != "continue":
    ...         break
    >>> d["decision"], d["n_candidate"], d["only_candidate_right"], d["only_active_right"]
    ('promote', 500, 25, 0)
    """

    max_pending = 200_000  # halves waiting for their other half (bounded: a version that stops is forgotten)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict[str, list[Any]] = {}  # pair key -> [version, verdict]
        self.only_active = self.only_candidate = 0

    def _count(self, outcome: Mapping[str, Any], version: str, right: bool) -> bool:
        """A half waits for its other half; a pair adds one unit of evidence to both versions."""
        key = f"{outcome.get('symbol')}|{outcome.get('timeframe')}|{outcome.get('open_time')}|{outcome.get('horizon')}"
        other = self.pending.pop(key, None)
        if other is None or other[0] == version:  # the first half (a redelivered half replaces itself)
            self.pending[key] = [version, right]
            while len(self.pending) > self.max_pending:
                del self.pending[next(iter(self.pending))]
            return False
        verdicts = {version: right, other[0]: other[1]}
        for v in (self.active, self.candidate):
            self.n[v] += 1
            self.correct[v] += int(verdicts[v])
        self.only_active += int(verdicts[self.active] and not verdicts[self.candidate])
        self.only_candidate += int(verdicts[self.candidate] and not verdicts[self.active])
        return True

    def decide(self) -> dict[str, Any]:
        n, b, c = self.n[self.active], self.only_active, self.only_candidate
        record: dict[str, Any] = {
            "active": self.active, "candidate": self.candidate, "paired": True, "n_active": n, "n_candidate": n,
            "accuracy_active": self.correct[self.active] / n if n else None,
            "accuracy_candidate": self.correct[self.candidate] / n if n else None,
            "only_active_right": b, "only_candidate_right": c,
            "margin": self.margin, "alpha": self.alpha, "rollback_alpha": self.rollback_alpha,
            "min_outcomes": self.min_outcomes, "z": None, "p_value": None, "z_worse": None, "p_worse": None,
        }
        if n < self.min_outcomes:
            return {**record, "decision": "continue", "reason": "too few paired outcomes"}
        z, p = paired_z(b, c, n, self.margin)
        z_worse, p_worse = paired_z(c, b, n)
        record.update(z=z, p_value=p, z_worse=z_worse, p_worse=p_worse)
        if p < self.alpha:
            decision, reason = "promote", f"candidate better on the same candles by more than {self.margin:.3%} (p={p:.3g})"
        elif p_worse < self.rollback_alpha:
            decision, reason = "rollback", f"candidate worse on the same candles (p={p_worse:.3g})"
        elif self.max_outcomes is not None and n >= self.max_outcomes:
            decision, reason = "rollback", f"inconclusive after {n} paired outcomes"
        else:
            return {**record, "decision": "continue", "reason": "not significant yet"}
        self.decided = {**record, "decision": decision, "reason": reason}
        return self.decided
