"""Soak: stream real candles through a worker for minutes and watch throughput, latency and memory.

``python -m bench.soak [--minutes 10] [--rate 200] [--json]`` (``candleflow bench soak``): one embedded
broker, one ``candleflow worker`` (the bundle, outcome loop on), the bundled real candles replayed in
laps (each lap shifted forward in time by the series' span, so every symbol's history just continues).
Every ``--every`` seconds it samples the worker's RSS (/proc), candles/s and end-to-end latency p50/p99
(from /stats) and the consumer lag; at the end it reports the trend of memory (growth per 10 minutes
fitted over the second half, after warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.broker_bytes import summarise, topic_bytes
from streams.broker import EmbeddedBroker, free_port
from core.candle import Candle
from core.candle_files import read_candle_file
from candleflow.demo import BUNDLED_CANDLES, ensure_model
from streams.producer import CandleProducer, Pacer, merge_by_time
from core.settings import Settings
from core.topics import ensure_topics, topic_specs
from streams.worker_process import WorkerProcess

__all__ = ["main"]


def laps(files: list[Path]):
    """The real candles, merged by time, again and again, each lap later than the last."""
    base = list(merge_by_time([read_candle_file(f).candles for f in files]))
    span = base[-1].open_time - base[0].open_time + 300_000
    lap = 0
    while True:
        shift = lap * span
        for c in base:
            yield Candle(c.symbol, c.timeframe, c.open_time + shift, c.open, c.high, c.low, c.close, c.volume)
        lap += 1


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


async def feed(settings: Settings, rate: float, seconds: float, linger_ms: int) -> int:
    sent = 0
    deadline = time.monotonic() + seconds
    async with CandleProducer(settings, linger_ms=linger_ms) as producer:
        pacer = Pacer(rate=rate)
        for candle in laps(sorted(BUNDLED_CANDLES.glob("*.csv.gz"))):
            if time.monotonic() >= deadline:
                break
            await pacer.wait(candle)
            await producer.send(candle)
            sent += 1
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="candleflow bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="candles per second")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--feeder-linger-ms", type=int, default=50,
                        help="the feeder's producer linger: candles per produce batch (see BENCHMARKS.md, Soak)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.every <= 0 or args.feeder_linger_ms < 0:
        parser.error("--minutes, --rate and --every must be positive, --feeder-linger-ms not negative")

    base = Settings.from_env()
    ensure_model(Path(base.model_dir), sorted(BUNDLED_CANDLES.glob("*.csv.gz")), progress=False)
    workdir = Path(tempfile.mkdtemp(prefix="candleflow-soak-"))
    samples: list[dict] = []
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        settings = base.replace(broker={"bootstrap": broker.bootstrap}, app_id="candleflow-soak", topic_prefix="soak",
                                data_dir=workdir / "state", model_dir=Path(base.model_dir).resolve(),
                                web={"port": free_port()}, timeframes=("5m",))
        ensure_topics(settings.broker.bootstrap, topic_specs(settings))
        worker = WorkerProcess(settings, workdir / "worker.log").start()
        try:
            worker.wait_ready()
            started = time.monotonic()

            async def run() -> int:
                feeder = asyncio.create_task(feed(settings, args.rate, args.minutes * 60, args.feeder_linger_ms))
                while not feeder.done():
                    await asyncio.wait({feeder}, timeout=args.every)
                    stats = worker.get("/stats")
                    sample = {"t_s": round(time.monotonic() - started, 1), "rss_mb": round(rss_mb(worker.process.pid), 1),
                              "broker_rss_mb": round(rss_mb(broker._process.pid), 1),
                              "broker_cpu_s": cpu_seconds(broker._process.pid), "worker_cpu_s": cpu_seconds(worker.process.pid),
                              "candles_per_s": stats["candles_per_s"], "e2e_p50_ms": stats["end_to_end_ms"]["p50"],
                              "e2e_p99_ms": stats["end_to_end_ms"]["p99"], "lag": stats["consumer_lag"],
                              "predictions": stats["predictions"]}
                    samples.append(sample)
                    print("  ".join(f"{k} {v}" for k, v in sample.items()), file=sys.stderr, flush=True)
                return feeder.result()

            sent = asyncio.run(run())
        finally:
            worker.stop()
        by_topic = summarise(asyncio.run(topic_bytes(broker.bootstrap, (settings.topic_prefix, settings.app_id))))
    shutil.rmtree(workdir, ignore_errors=True)

    second_half = [s for s in samples if s["t_s"] >= samples[-1]["t_s"] / 2] if samples else []
    growth = None
    if len(second_half) >= 2:
        t0, t1 = second_half[0]["t_s"], second_half[-1]["t_s"]
        growth = round((second_half[-1]["rss_mb"] - second_half[0]["rss_mb"]) / max(t1 - t0, 1) * 600, 1)
    result = {"minutes": args.minutes, "rate": args.rate, "candles_sent": sent, "samples": samples,
              "rss_mb_first": samples[0]["rss_mb"] if samples else None, "rss_mb_last": samples[-1]["rss_mb"] if samples else None,
              "rss_growth_mb_per_10min_second_half": growth,
              "broker_topics": [dict(zip(("topic", "records", "bytes", "bytes_per_record", "share"), row)) for row in by_topic]}
    print(f"soak: {sent} candles in {args.minutes} min at {args.rate}/s; RSS {result['rss_mb_first']} -> "
          f"{result['rss_mb_last']} MB (second half: {growth} MB per 10 min)")
    for topic, records, size, per_record, share in by_topic[:10]:
        print(f"  {topic:<52} {records:>9} records {size / 1e6:>9.1f} MB {per_record:>8.0f} B/record {share:>6.1%}")
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
