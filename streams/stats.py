"""Live counters, rates and latency percentiles of one worker: the web views, metrics and dashboard read them.

>>> s = PipelineStats()
>>> s.count(candles=3, predictions=2, dead_letters=1)
>>> s.inference_ms.add(1.5); s.inference_ms.add(2.5)
>>> snap = s.snapshot()
>>> snap["candles"], snap["dead_letters"], snap["inference_ms"]["p50"]
(3, 1, 1.5)
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.latency import LatencyWindow

__all__ = ["PipelineStats", "RateMeter"]


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self._marks: deque[tuple[float, int]] = deque()

    def mark(self, n: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._marks.append((now, n))
        while self._marks and self._marks[0][0] < now - self.window_s:
            self._marks.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        total = sum(n for t, n in self._marks if t >= now - self.window_s)
        return total / self.window_s


@dataclass
class PipelineStats:
    candles: int = 0
    predictions: int = 0
    signals: int = 0
    dead_letters: int = 0
    batches: int = 0
    started_at: float = field(default_factory=time.time)
    inference_ms: LatencyWindow = field(default_factory=LatencyWindow)
    end_to_end_ms: LatencyWindow = field(default_factory=LatencyWindow)
    batch_sizes: LatencyWindow = field(default_factory=LatencyWindow)
    candle_rate: RateMeter = field(default_factory=RateMeter)
    # One point a second for the dashboard's charts: (unix time, candles/s, e2e p50, e2e p99).
    history: deque = field(default_factory=lambda: deque(maxlen=900))

    def count(self, **increments: int) -> None:
        for name, n in increments.items():
            setattr(self, name, getattr(self, name) + n)
        if "candles" in increments:
            self.candle_rate.mark(increments["candles"])

    def tick(self) -> None:
        """Record one history point (called once a second by the worker)."""
        e2e = self.end_to_end_ms.summary()
        self.history.append((round(time.time(), 3), round(self.candle_rate.rate(), 2), e2e["p50"], e2e["p99"]))

    def snapshot(self) -> dict[str, Any]:
        return {
            "candles": self.candles, "predictions": self.predictions, "signals": self.signals,
            "dead_letters": self.dead_letters, "batches": self.batches,
            "uptime_s": round(time.time() - self.started_at, 3),
            "candles_per_s": round(self.candle_rate.rate(), 2),
            "inference_ms": self.inference_ms.summary(),
            "end_to_end_ms": self.end_to_end_ms.summary(),
            "batch_size": self.batch_sizes.summary(),
        }
