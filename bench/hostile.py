"""Hostile input against a running worker: what one 1 MiB message of invalid candles costs, and what
many distinct symbols cost in memory.

Run: ``python -m bench.hostile [--json] [--messages 5] [--symbols 0] [--model DIR]``
(or ``candleflow bench hostile``).

One embedded broker and one worker (the given model, default ``var/models/candleflow``: the one
``make demo`` trains), warmed with real candles. Then:

- **1 MiB of invalid candles**: ``messages`` CandleBatch messages, each as many invalid candles as fit
  under the 1 MiB message limit (~15,000), sent one after another. Measured: dead-letter records and
  bytes per message (read back from the topic), and the worker's resident memory before, at its peak
  (sampled every 20 ms) and after. Goals (issue 16): <= 2 MiB of dead letters and <= 50 MB of RSS
  growth per message; printed beside what the same input did before (15,040 dead letters, 939 MiB,
  +976 MB).
- **Many symbols** (``--symbols N``, 0 skips it): N distinct symbols, one real candle each, in
  CandleBatch messages; the worker's RSS once every candle is predicted, against its RSS before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench._model_argument import parse_model_bench_args
from bench.recovery import many_symbols
from schemas import MultiCodec, schema_store
from streams.broker import EmbeddedBroker, free_port
from kafka_io.client_internals import refresh_metadata
from streams.producer import CandleProducer
from core.settings import Settings
from core.topics import ensure_topics, topic_specs
from streams.worker_process import WorkerProcess

BEFORE = {"dead_letters": 15_040, "dead_letter_mib": 939, "rss_growth_mb": 976}  # issue 16, measured before the fix
GOALS = {"dead_letter_mib": 2.0, "rss_growth_mb": 50.0}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class PeakSampler:
    """Samples a process's RSS every ``every_s`` in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        self.pid, self.every_s, self.peak = pid, every_s, rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, rss_mb(self.pid))


def invalid_batch(codec: MultiCodec, limit: int) -> tuple[bytes, int]:
    """The largest CandleBatch of invalid candles (high below low) that stays under ``limit`` bytes."""
    record = {"symbol": "EVIL", "timeframe": "5m", "open_time": 1_515_560_100_000, "open": 0.0984, "high": 0.0900,
              "low": 0.0982, "close": 0.0994, "volume": 1820.5}
    one = len(codec.encode("CandleBatch", {"candles": [record]}))
    n = limit // max(one - 8, 1)
    while True:
        value = codec.encode("CandleBatch", {"candles": [{**record, "open_time": record["open_time"] + 300_000 * i}
                                                          for i in range(n)]})
        if len(value) <= limit:
            return value, n
        n = int(n * 0.97)


async def send_raw(settings: Settings, key: bytes, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap, max_request_size=4 << 20)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.candle_topic("5m"), value, key=key)
    finally:
        await producer.stop()


async def dead_letter_sizes(settings: Settings, idle_s: float = 2.0) -> list[int]:
    """The byte size of every record on the dead-letter topic."""
    topic = settings.topic("dead-letters")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=100, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        await refresh_metadata(consumer)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        sizes: list[int] = []
        while batch := await consumer.getmany(timeout_ms=int(idle_s * 1000)):
            sizes += [len(m.value or b"") + len(m.key or b"") for ms in batch.values() for m in ms]
        return sizes
    finally:
        await consumer.stop()


STALLS = {"n": 0}  # /stats requests that got no answer within 5 s (the worker's event loop busy)


def wait_stats(worker: WorkerProcess, condition, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stats = worker.get("/stats")
        except OSError:  # a timeout: the worker is busy, not gone (its process is checked below)
            STALLS["n"] += 1
            if worker.process.poll() is not None:
                raise RuntimeError(f"the worker exited (status {worker.process.returncode})")
            continue
        if condition(stats):
            return stats
        time.sleep(0.1)
    raise TimeoutError(f"the worker's /stats did not reach the condition within {timeout_s:.0f} s")


async def publish(settings: Settings, steps) -> None:
    async with CandleProducer(settings) as producer:
        for step in steps:
            await producer.send_batch(step)
        await producer.flush()


def run(model_dir: Path, n_messages: int, n_symbols: int, progress=print) -> dict:
    work = Path(tempfile.mkdtemp(prefix="candleflow-bench-hostile-"))
    try:
        with EmbeddedBroker(log_path=work / "broker.log") as broker:
            settings = Settings(broker={"bootstrap": broker.bootstrap}, app_id=f"cf-hostile-{uuid.uuid4().hex[:8]}", topic_prefix="hb",
                                partitions=4, timeframes=("5m",), model_dir=model_dir, data_dir=work / "state",
                                web={"port": free_port()}, signal_threshold=0.05)
            ensure_topics(settings.broker.bootstrap, topic_specs(settings))
            worker = WorkerProcess(settings, work / "worker.log").start()
            worker.wait_ready(300)
            pid = worker.process.pid
            progress("warming the worker with real candles ...")
            warm = many_symbols(20, 100, "W")
            asyncio.run(publish(settings, warm))
            warm_n = sum(len(s) for s in warm)
            stats = wait_stats(worker, lambda s: s["predictions"] >= warm_n)
            time.sleep(2.0)  # let the checkpoint after the last batch finish before taking the baseline
            codec = MultiCodec(["Candle", "CandleBatch"], schema_store(settings))
            value, per_message = invalid_batch(codec, settings.max_message_bytes)
            rss_before = rss_mb(pid)
            dead_before = stats["dead_letters"]
            progress(f"sending {n_messages} messages of {per_message:,} invalid candles ({len(value) / 2**20:.2f} MiB each) ...")
            with PeakSampler(pid) as sampler:
                t0 = time.monotonic()
                asyncio.run(send_raw(settings, b"EVIL", [value] * n_messages))
                wait_stats(worker, lambda s: s["dead_letters"] >= dead_before + n_messages * per_message)
                handled_s = time.monotonic() - t0
                time.sleep(1.0)
            rss_after = rss_mb(pid)
            sizes = asyncio.run(dead_letter_sizes(settings))
            hostile = {
                "messages": n_messages, "message_bytes": len(value), "candles_per_message": per_message,
                "dead_letter_records": len(sizes), "dead_letter_records_per_message": len(sizes) / n_messages,
                "dead_letter_mib_per_message": round(sum(sizes) / n_messages / 2**20, 3),
                "rss_before_mb": round(rss_before, 1), "rss_peak_mb": round(sampler.peak, 1),
                "rss_after_mb": round(rss_after, 1), "rss_growth_mb": round(sampler.peak - rss_before, 1),
                "handled_s": round(handled_s, 2), "worker_ready_after": worker.get("/ready")["ready"],
            }
            many = None
            if n_symbols:
                progress(f"{n_symbols:,} distinct symbols, one candle each ...")
                steps = many_symbols(n_symbols, 1, "N")
                rss0, done = rss_mb(pid), wait_stats(worker, lambda s: True)["predictions"]
                with PeakSampler(pid, 0.2) as sampler:
                    t0 = time.monotonic()
                    asyncio.run(publish(settings, steps))
                    shown = [time.monotonic()]

                    def scored(s: dict) -> bool:
                        if time.monotonic() - shown[0] >= 10:
                            shown[0] = time.monotonic()
                            progress(f"  {s['predictions'] - done:,} predicted, {s.get('live_series')} live series, "
                                     f"RSS {rss_mb(pid):.0f} MB")
                        return s["predictions"] >= done + n_symbols

                    wait_stats(worker, scored, timeout_s=1800)
                    took = time.monotonic() - t0
                many = {"symbols": n_symbols, "rss_before_mb": round(rss0, 1), "rss_peak_mb": round(sampler.peak, 1),
                        "rss_after_mb": round(rss_mb(pid), 1), "seconds": round(took, 1),
                        "predicted": wait_stats(worker, lambda s: True)["predictions"] - done,
                        "stats_unanswered_5s": STALLS["n"]}
            worker.stop(60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"hostile": hostile, "many_symbols": many, "before": BEFORE, "goals": GOALS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="candleflow bench hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5, help="1 MiB messages of invalid candles to send")
    parser.add_argument("--symbols", type=int, default=0, help="distinct symbols for the memory part (0: skip it)")
    if (args := parse_model_bench_args(parser, argv)) is None:
        return 2
    if args.messages < 1 or args.symbols < 0:
        print("--messages must be >= 1 and --symbols >= 0", file=sys.stderr)
        return 2
    result = run(args.model, args.messages, args.symbols, progress=lambda m: print(m, file=sys.stderr))
    h, before = result["hostile"], result["before"]
    met_dead = h["dead_letter_mib_per_message"] <= GOALS["dead_letter_mib"]
    met_rss = h["rss_growth_mb"] <= GOALS["rss_growth_mb"]
    print(f"{h['messages']} messages of {h['candles_per_message']:,} invalid candles, {h['message_bytes'] / 2**20:.2f} MiB each "
          f"(handled in {h['handled_s']:.1f} s; worker ready after: {h['worker_ready_after']})")
    print(f"  {'per message':<28}{'now':>12}{'before':>12}{'goal':>10}")
    print(f"  {'dead-letter records':<28}{h['dead_letter_records_per_message']:>12,.0f}{before['dead_letters']:>12,}{'':>10}")
    print(f"  {'dead-letter MiB':<28}{h['dead_letter_mib_per_message']:>12.3f}{before['dead_letter_mib']:>12,}"
          f"{'<= 2':>10} {'met' if met_dead else 'MISSED'}")
    print(f"  {'worker RSS growth MB':<28}{h['rss_growth_mb']:>12.1f}{before['rss_growth_mb']:>12,}"
          f"{'<= 50':>10} {'met' if met_rss else 'MISSED'}")
    print(f"  RSS before / peak / after: {h['rss_before_mb']:.0f} / {h['rss_peak_mb']:.0f} / {h['rss_after_mb']:.0f} MB")
    if result["many_symbols"]:
        m = result["many_symbols"]
        print(f"{m['symbols']:,} distinct symbols: {m['predicted']:,} predicted in {m['seconds']:.0f} s; worker RSS "
              f"{m['rss_before_mb']:.0f} -> peak {m['rss_peak_mb']:.0f} MB, {m['rss_after_mb']:.0f} MB after "
              f"(goal <= 800 MB: {'met' if m['rss_peak_mb'] <= 800 else 'MISSED'}); /stats unanswered within 5 s "
              f"{m['stats_unanswered_5s']} times")
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
