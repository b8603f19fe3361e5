"""The parameters of ``bench.pipeline``: partitions, symbol counts, rates, the rows and their labels, the
goals (issue 13), and the size of a run (:class:`Config`, full or ``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BURST_SYMBOLS", "Config", "GOALS", "LABELS", "LIVE_SYMBOLS", "PARTITIONS", "REPO", "ROWS", "STEADY_RATE",
           "TICK_S", "WARMUP_STEPS"]


REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4
LIVE_SYMBOLS = 200
BURST_SYMBOLS = 2000
WARMUP_STEPS = 40  # > READY_AFTER (34): every symbol's features are ready when timing starts
STEADY_RATE = 1000.0
TICK_S = 0.010
ROWS = ("raw", "faust", "quix", "candleflow", "candleflow-batch", "compute")
LABELS = {"raw": "(a) raw aiokafka pass-through", "faust": "(b) plain Faust agent forwarder",
          "quix": "(c) Quix Streams, same features + ONNX", "candleflow": "(d) Candleflow, single-candle messages",
          "candleflow-batch": "(e) Candleflow, CandleBatch messages", "compute": "(f) the batch step in-process, no Kafka"}
# Issue 13's goals; steady latencies are over the bench floor (feeder -> broker -> reader without a processor).
GOALS = {"steady_p50_over_floor_ms": 10.0, "steady_p99_over_floor_ms": 50.0, "burst_last_ms": 250.0, "rss_mb": 500.0,
         "batch_vs_faust": 2.0, "batch_vs_quix": 3.0, "single_vs_faust": 1.0, "records_per_candle": 1.5,
         "compute_us": 40.0, "worker_vs_compute": 1.5}


@dataclass
class Config:
    quick: bool
    steady_s: float
    bursts: int
    max_target_s: float
    max_cap: int

    @classmethod
    def make(cls, quick: bool) -> "Config":
        if quick:
            return cls(True, steady_s=3.0, bursts=1, max_target_s=2.5, max_cap=40_000)
        return cls(False, steady_s=10.0, bursts=3, max_target_s=8.0, max_cap=250_000)
