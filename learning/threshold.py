"""The adaptive signal threshold: conservative when a version's recent signals lose, back when they recover.

A signal is a confident prediction (confidence >= threshold); its label outcome says whether it was right
(``direction_correct``) and what it earned (the log return in its direction). Per model version, an
:class:`AdaptiveThreshold` keeps the verdicts of its last ``window`` signals at the configured threshold
(``base``: judging only those a raised threshold lets through would see a recovery ever more slowly, as
they grow rare) and, every ``every`` new ones,
raises the threshold by ``step`` when their hit rate is below ``hit_floor`` or their mean P&L below 0
(conservative mode), and lowers it by ``step`` when both have recovered (hit rate at least ``hit_floor +
recover_margin``, P&L at least 0) — always within ``base`` .. ``ceiling``. Each change is an event.

One per version in each partition's learner (learning/learner.py), fed in the partition's order of
candles and applied when the partition's clock moves on, like the online model's mini-batches: the
threshold a candle is judged by depends only on the candles before it (deterministic under replay).

>>> t = AdaptiveThreshold(ThresholdConfig(base=0.3, ceiling=0.5, window=4, every=2))
>>> [t.observe(hit, pnl) for hit, pnl in [(False, -0.01), (True, 0.002), (False, -0.01), (False, -0.003)]][-1]
{'from': 0.3, 'to': 0.35, 'mode': 'conservative', 'hit_rate': 0.25, 'mean_pnl': -0.00525, 'signals': 4}
>>> [t.observe(True, 0.01) for _ in range(4)][-1]["to"], t.value
(0.3, 0.3)
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AdaptiveThreshold", "ThresholdConfig"]


@dataclass(frozen=True)
class ThresholdConfig:
    base: float = 0.3  # the configured signal threshold: the lowest it goes
    ceiling: float = 0.6  # the highest it goes
    step: float = 0.05
    window: int = 100  # signal verdicts judged
    every: int = 25  # new verdicts between two judgements
    hit_floor: float = 0.5
    recover_margin: float = 0.03  # hysteresis: lowered again only at hit_floor + this
    from_trades: bool = False  # judged on trading engines' results (TRADE outcomes) instead of the labels

    def __post_init__(self) -> None:
        if not 0.0 <= self.base <= self.ceiling <= 1.0:
            raise ValueError(f"the adaptive threshold needs 0 <= base <= ceiling <= 1, got {self.base}, {self.ceiling}")
        if self.step <= 0 or self.window < 1 or self.every < 1:
            raise ValueError("the adaptive threshold needs step > 0, window >= 1 and every >= 1")


class AdaptiveThreshold:
    """The signal threshold of one model version (module docstring)."""

    def __init__(self, config: ThresholdConfig) -> None:
        self.config = config
        self.value = config.base
        self.recent: deque[tuple[int, float]] = deque(maxlen=config.window)  # (1 right / 0 wrong, P&L)
        self._since = 0  # verdicts since the last judgement
        self.changes = 0

    def observe(self, hit: bool | None, pnl: float) -> dict[str, Any] | None:
        """One signal's outcome (``hit`` None for an unchanged close: no verdict, no P&L); returns the
        change it caused, if any."""
        if hit is None:
            return None
        self.recent.append((int(hit), float(pnl)))
        self._since += 1
        if self._since < self.config.every or len(self.recent) < self.config.window:
            return None
        self._since = 0
        c = self.config
        hit_rate = sum(h for h, _ in self.recent) / len(self.recent)
        mean_pnl = sum(p for _, p in self.recent) / len(self.recent)
        if hit_rate < c.hit_floor or mean_pnl < 0:
            target, mode = min(round(self.value + c.step, 6), c.ceiling), "conservative"
        elif hit_rate >= c.hit_floor + c.recover_margin and self.value > c.base:
            target = max(round(self.value - c.step, 6), c.base)
            mode = "normal" if target == c.base else "conservative"
        else:
            return None
        if target == self.value:
            return None
        change = {"from": self.value, "to": target, "mode": mode, "hit_rate": round(hit_rate, 6),
                  "mean_pnl": round(mean_pnl, 9), "signals": len(self.recent)}
        self.value = target
        self.changes += 1
        return change

    @property
    def mode(self) -> str:
        return "normal" if self.value <= self.config.base else "conservative"

    def state(self) -> dict[str, Any]:
        """JSON-ready: what /models shows and what the learner stores."""
        n = len(self.recent)
        return {"threshold": self.value, "mode": self.mode, "signals": n, "changes": self.changes,
                "hit_rate": sum(h for h, _ in self.recent) / n if n else None,
                "mean_pnl": sum(p for _, p in self.recent) / n if n else None}

    def to_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "value": self.value, "recent": [list(r) for r in self.recent],
                "since": self._since, "changes": self.changes}

    @classmethod
    def from_dict(cls, state: dict[str, Any], config: ThresholdConfig | None = None) -> "AdaptiveThreshold":
        """Restore; with ``config`` (today's settings) its bounds and rules apply from now on, the value clipped to them."""
        t = cls(config or ThresholdConfig(**state["config"]))
        t.value = min(max(float(state["value"]), t.config.base), t.config.ceiling)
        t.recent.extend((int(h), float(p)) for h, p in state["recent"])
        t._since, t.changes = int(state["since"]), int(state["changes"])
        return t
