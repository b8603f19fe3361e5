"""Recovery time of a worker restart with many symbols in its tables.

Run: ``python -m bench.recovery [--json] [--symbols 2000] [--candles 10] [--store rocksdb://]``.

One embedded broker and one app: a worker scores ``symbols`` x ``candles`` real candles (symbol k
replays real series k mod 2 with prices scaled by 1 + k/10,000), so its tables hold a state per symbol
and their changelogs hold every write. Then it is stopped and three starts are timed, from process
start to ``/ready`` (partitions assigned, tables recovered, model loaded):

- ``cold``: the same app with an empty state directory: every table is rebuilt from its changelog
  (what a replacement machine or a pod without a volume does);
- ``warm``: the same app with the state directory left by the cold start (RocksDB keeps the tables;
  only the changelog tail past the stored offsets is read);
- ``baseline``: a fresh app id with empty changelogs: process start, model load and group join,
  nothing to recover. ``cold - baseline`` is the time spent recovering.

After the cold start, the features of 50 symbols are compared with what the first worker served
before it stopped (recovery must be exact, not just fast). The changelog records are counted by
reading the changelog topics (not from ListOffsets, which the embedded broker under-reports).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench._model_argument import parse_model_bench_args
from streams.broker import EmbeddedBroker, free_port
from core.candle import Candle
from core.candle_files import read_candle_file
from kafka_io.client_internals import refresh_metadata
from streams.producer import CandleProducer
from core.settings import Settings
from core.topics import ensure_topics, topic_specs
from streams.worker_process import WorkerProcess

REPO = Path(__file__).resolve().parents[1]
TABLES = ("feature-states", "feature-windows", "signal-heads", "signal-ring", "aggregators", "labellers", "prediction-features", "learners")


def many_symbols(n_symbols: int, per_symbol: int, tag: str = "") -> list[list[Candle]]:
    """Steps (one candle per symbol each) of real candles under ``n_symbols`` names (``<symbol>-<tag><k>``)."""
    series = [read_candle_file(p).candles[3000:3000 + per_symbol] for p in sorted((REPO / "data" / "candles").glob("*.csv.gz"))]
    steps = []
    for i in range(per_symbol):
        step = []
        for k in range(n_symbols):
            c, f = series[k % len(series)][i], 1 + k / 10_000
            step.append(replace(c, symbol=f"{c.symbol}-{tag}{k:05d}", open=c.open * f, high=c.high * f, low=c.low * f, close=c.close * f))
        steps.append(step)
    return steps


async def publish_steps(settings: Settings, steps: list[list[Candle]]) -> None:
    async with CandleProducer(settings) as producer:
        for step in steps:
            await producer.send_batch(step)
        await producer.flush()


async def count_records(bootstrap: str, topics: list[str], idle_s: float = 2.0) -> dict[str, int]:
    """Records in each topic, counted by reading it from the beginning until it stays idle."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        await refresh_metadata(consumer)
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        counts = {t: 0 for t in topics}
        if not tps:
            return counts
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while batch := await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=10_000):
            for tp, messages in batch.items():
                counts[tp.topic] += len(messages)
        return counts
    finally:
        await consumer.stop()


def time_to_ready(settings: Settings, log: Path) -> tuple[WorkerProcess, float]:
    started = time.monotonic()
    worker = WorkerProcess(settings, log).start()
    worker.wait_ready(600)
    return worker, time.monotonic() - started


def wait_for_predictions(worker: WorkerProcess, n: int, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.get("/stats")["predictions"] >= n:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the worker did not score {n} candles within {timeout_s:.0f} s")


def run(n_symbols: int, per_symbol: int, store: str, model_dir: Path, progress=print) -> dict:
    work = Path(tempfile.mkdtemp(prefix="candleflow-bench-recovery-"))
    try:
        with EmbeddedBroker(log_path=work / "broker.log") as broker:
            settings = Settings(broker={"bootstrap": broker.bootstrap}, app_id=f"cf-recovery-{uuid.uuid4().hex[:8]}", topic_prefix="rec",
                                partitions=4, timeframes=("5m",), model_dir=model_dir, data_dir=work / "state-0",
                                web={"port": free_port()}, store=store, signal_threshold=0.05)
            ensure_topics(settings.broker.bootstrap, topic_specs(settings))
            steps = many_symbols(n_symbols, per_symbol)
            total = n_symbols * per_symbol
            first, _ = time_to_ready(settings, work / "worker-0.log")
            progress(f"scoring {total:,} candles of {n_symbols:,} symbols ...")
            t0 = time.monotonic()
            asyncio.run(publish_steps(settings, steps))
            wait_for_predictions(first, total)
            scored_s = time.monotonic() - t0
            sample = random.Random(7).sample([c.symbol for c in steps[0]], min(50, n_symbols))
            before = {s: first.get(f"/features/{s}/5m") for s in sample}
            first.stop(60)

            changelogs = [f"{settings.app_id}-{t}-changelog" for t in TABLES]
            records = asyncio.run(count_records(settings.broker.bootstrap, changelogs))

            progress("cold restart (empty state directory) ...")
            cold_settings = settings.replace(data_dir=work / "state-1", web={"port": free_port()})
            cold, cold_s = time_to_ready(cold_settings, work / "worker-1.log")
            after = {s: cold.get(f"/features/{s}/5m") for s in sample}
            cold.stop(60)

            progress("warm restart (state directory kept) ...")
            warm, warm_s = time_to_ready(cold_settings.replace(web={"port": free_port()}), work / "worker-2.log")
            warm.stop(60)

            progress("baseline (fresh app, nothing to recover) ...")
            base_settings = settings.replace(app_id=f"{settings.app_id}-base", data_dir=work / "state-3", web={"port": free_port()})
            base, base_s = time_to_ready(base_settings, work / "worker-3.log")
            base.process.kill()
            base.process.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mismatched = [s for s in sample if before[s] != after[s]]
    n_records = sum(records.values())
    recovery_s = max(cold_s - base_s, 0.0)
    return {
        "symbols": n_symbols, "candles": total, "store": store, "scored_s": round(scored_s, 2),
        "changelog_records": n_records, "changelog_records_by_table": {t: records[f"{settings.app_id}-{t}-changelog"] for t in TABLES},
        "cold_ready_s": round(cold_s, 2), "warm_ready_s": round(warm_s, 2), "baseline_ready_s": round(base_s, 2),
        "recovery_s": round(recovery_s, 2), "records_per_s": round(n_records / recovery_s) if recovery_s > 0 else None,
        "features_checked": len(sample), "features_mismatched": len(mismatched),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--candles", type=int, default=10, help="candles per symbol")
    parser.add_argument("--store", default="rocksdb://", choices=["rocksdb://", "memory://"])
    if (args := parse_model_bench_args(parser, argv)) is None:
        return 2
    result = run(args.symbols, args.candles, args.store, args.model, progress=lambda m: print(m, file=sys.stderr))
    print(f"{result['symbols']:,} symbols, {result['candles']:,} candles, {result['changelog_records']:,} changelog records "
          f"({args.store})")
    print(f"  time to ready, cold (rebuild from changelog): {result['cold_ready_s']:.1f} s")
    print(f"  time to ready, warm (state dir kept):         {result['warm_ready_s']:.1f} s")
    print(f"  time to ready, nothing to recover:            {result['baseline_ready_s']:.1f} s")
    print(f"  recovery (cold - baseline): {result['recovery_s']:.1f} s"
          + (f", {result['records_per_s']:,} records/s" if result["records_per_s"] else ""))
    print(f"  features of {result['features_checked']} symbols after recovery: {result['features_mismatched']} differ")
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    return 0 if result["features_mismatched"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
