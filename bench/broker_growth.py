"""Does the embedded broker slow down as it fills? Its CPU over time, for small and large produce batches.

``candleflow bench broker-growth [--seconds 75] [--rate 300] [--size 3000] [--json]``: for each producer
linger (5 ms: about one record per produce batch at this rate; 100 ms: tens of records per batch) a fresh
embedded broker, one aiokafka producer sending ``--rate`` records/s of ``--size`` bytes to a 4-partition
topic, and one consumer tailing it (25 ms fetch wait, as the worker's). No Candleflow code in the loop:
this measures the broker alone. Every 15 s it prints the broker's CPU share over the last 15 s and its RSS.

Found here (BENCHMARKS.md, Soak): the CPU Tansu's memory store spends per second grows with the number
of record *batches* it holds, not with their bytes, so a long run needs few, large batches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.soak import cpu_seconds, rss_mb
from streams.broker import EmbeddedBroker
from core.topics import TopicSpec, ensure_topics

__all__ = ["main"]

SAMPLE_S = 15.0


async def run(bootstrap: str, pid: int, linger_ms: int, rate: float, size: int, seconds: float) -> list[dict]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms)
    consumer = AIOKafkaConsumer("growth", bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=25,
                                auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    received = 0

    async def tail() -> None:
        nonlocal received
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            received += sum(map(len, batch.values()))

    tailer = asyncio.create_task(tail())
    samples, value, sent = [], b"x" * size, 0
    start = last = time.monotonic()
    last_cpu = cpu_seconds(pid)
    try:
        while (now := time.monotonic()) - start < seconds:
            while sent < int((now - start) * rate):
                await producer.send("growth", value, key=str(sent % 8).encode())  # enqueued, not awaited to the broker
                sent += 1
            await asyncio.sleep(0.005)
            if now - last >= SAMPLE_S:
                cpu = cpu_seconds(pid)
                samples.append({"t_s": round(now - start), "sent": sent, "received": received,
                                "broker_cpu_pct": round(100 * (cpu - last_cpu) / (now - last)),
                                "broker_rss_mb": round(rss_mb(pid))})
                print(f"  linger {linger_ms:>3} ms  " + "  ".join(f"{k} {v}" for k, v in samples[-1].items()),
                      file=sys.stderr, flush=True)
                last, last_cpu = now, cpu
    finally:
        tailer.cancel()
        await producer.stop()
        await consumer.stop()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="candleflow bench broker-growth", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=75.0)
    parser.add_argument("--rate", type=float, default=300.0, help="records per second")
    parser.add_argument("--size", type=int, default=3000, help="bytes per record")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.seconds < SAMPLE_S * 2 or args.rate <= 0 or args.size < 0:
        parser.error(f"--seconds must be at least {SAMPLE_S * 2:.0f}, --rate positive, --size not negative")
    result = {}
    for linger_ms in (5, 100):
        with EmbeddedBroker() as broker:
            ensure_topics(broker.bootstrap, [TopicSpec("growth", 4)])
            result[linger_ms] = asyncio.run(run(broker.bootstrap, broker._process.pid, linger_ms, args.rate,
                                                args.size, args.seconds))
    print(f"broker CPU % per {SAMPLE_S:.0f} s, {args.rate:.0f} records/s of {args.size} B:")
    for linger_ms, samples in result.items():
        print(f"  linger {linger_ms:>3} ms: " + " ".join(f"{s['broker_cpu_pct']:>3}" for s in samples)
              + f"   (RSS {samples[0]['broker_rss_mb']} -> {samples[-1]['broker_rss_mb']} MB)")
    if args.json:
        print(json.dumps({"rate": args.rate, "size": args.size, "by_linger_ms": result}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
