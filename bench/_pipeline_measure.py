"""Measuring a row of ``bench.pipeline``: waiting for a regime's outputs (:class:`Measure`), their latencies,
the bench's own floor (feeder -> broker -> reader, no processor), and the rounding of the figures."""

from __future__ import annotations

import math
import time
from typing import Any

from bench._pipeline_config import LIVE_SYMBOLS, PARTITIONS, STEADY_RATE, Config
from bench._pipeline_io import Feeder, Reader
from bench._pipeline_rows import Row, create_topics

__all__ = ["Measure", "latencies", "measure_floor", "pct", "rounded", "sustained_rate", "timeout_for"]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


def rounded(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(float(x), digits) if digits else round(float(x))


def sustained_rate(records: list[tuple[float, int, bytes | None]]) -> float | None:
    """Outputs per second between the 10th and the 90th percentile of their receive times: a regime's
    start and tail left out (None with too few outputs to tell)."""
    recv = sorted(r[0] for r in records)
    lo, hi = int(len(recv) * 0.1), max(int(len(recv) * 0.9) - 1, 0)
    span = recv[hi] - recv[lo] if recv else 0
    return (hi - lo) / span if span > 0 else None


def _record(value: Any, codec: Any) -> dict[str, Any]:
    """An output as a record: already decoded by the reader (a batch's item), or one message's value."""
    return value if isinstance(value, dict) else codec.decode(value)[1]


def latencies(row: Row, records: list[tuple[float, int, bytes | None]], codec: Any) -> list[float]:
    if not row.decode_outputs:
        return [recv * 1000.0 - ts for recv, ts, _ in records]
    out = []
    for recv, _, value in records:
        produced = _record(value, codec).get("candle_produced_at")
        if produced:
            out.append(recv * 1000.0 - produced)
    return out


def _implied_signals(records: list[tuple[float, int, bytes | None]], codec: Any, threshold: float) -> int:
    n = 0
    for _, _, value in records:
        p = _record(value, codec)
        n += bool(p["ready"] and p["confidence"] >= threshold)
    return n


class Measure:
    """Waits for a regime's outputs and turns them into figures."""

    def __init__(self, row: Row, reader: Reader, codec: Any, threshold: float):
        self.row, self.reader, self.codec, self.threshold = row, reader, codec, threshold
        self.expected = 0
        self.expected_signals = 0

    def wait(self, n_new: int, timeout_s: float) -> tuple[bool, list]:
        start = self.expected
        self.expected += n_new
        topic = self.row.outputs
        ok = self.reader.wait_for(lambda: self.reader.count(topic) >= self.expected, timeout_s, self.row.alive)
        with self.reader.cond:
            records = list(self.reader.records[topic][start:self.expected])
        if ok and self.row.signals and self.row.decode_outputs:
            self.expected_signals += _implied_signals(records, self.codec, self.threshold)
            sig = self.row.signals
            ok = self.reader.wait_for(lambda: self.reader.count(sig) >= self.expected_signals, 30, self.row.alive)
        return ok, records

    def signal_latencies(self, since: int) -> list[float]:
        if not self.row.signals:
            return []
        with self.reader.cond:
            records = list(self.reader.records[self.row.signals][since:])
        return latencies(self.row, records, self.codec)


def timeout_for(n: int) -> float:
    return min(600.0, 60.0 + n / 300.0)


def measure_floor(ctx: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """The bench's own share of every latency: feeder -> broker -> reader at 1,000 msg/s, no processor."""
    topic = f"bp{ctx['run_id']}-floor"
    create_topics(ctx["broker"], [(topic, {})])
    reader = Reader(ctx["broker"], [topic], PARTITIONS, set(), group=f"{topic}-reader")
    feeder = Feeder(ctx["broker"])
    universe, enc = ctx["universe"], ctx["encoder"]
    n = int(STEADY_RATE * (1.0 if cfg.quick else 3.0))
    try:
        for j in range(50):  # until the reader fetches: its first fetches (offset lookups) are slow
            feeder.send(topic, b"prime", b"prime")
        feeder.flush()
        reader.wait_for(lambda: reader.count(topic) >= 50, 30)
        time.sleep(0.2)
        with reader.cond:
            reader.records[topic].clear()
        started = time.monotonic()
        for j in range(n):
            k = j % LIVE_SYMBOLS
            feeder.send(topic, universe.keys[k], enc.candle(universe.candle(k, j // LIVE_SYMBOLS)))
            feeder.poll()
            time.sleep(max(0.0, started + (j + 1) / STEADY_RATE - time.monotonic()))
        feeder.flush()
        reader.wait_for(lambda: reader.count(topic) >= n, 30)
        lat = [recv * 1000.0 - ts for recv, ts, _ in reader.records[topic]]
        return {"messages": len(lat), "p50_ms": rounded(pct(lat, 50)), "p99_ms": rounded(pct(lat, 99))}
    finally:
        reader.stop()
