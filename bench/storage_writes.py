"""Write throughput: COPY-then-upsert against executemany, and the whole sink, in rows per second.

Run: ``python -m bench.storage_writes [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--rows 20000]``.
It creates its own ``candleflow_bench_<random>`` database on that server and drops it afterwards.
Each method writes fresh rows (inserts) and then the same rows again (a replay: conflicts only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
import uuid
from urllib.parse import urlparse, urlunparse

import asyncpg

from storage.postgres import PostgresStore
from storage.sink import BufferedSink

__all__ = ["measure"]


def _prediction(i: int, run: str) -> dict:
    t = 1_515_560_100_000 + i * 300_000
    p = 0.5 + 0.4 * math.sin(i)
    return {"id": f"{run}-{i}", "symbol": f"S{i % 20}", "timeframe": "5m", "open_time": t, "close": 1.0 + i * 1e-6,
            "horizon": 1, "prob_up": p, "direction": "UP" if p >= 0.5 else "DOWN", "confidence": abs(2 * p - 1),
            "ready": True, "model_version": "bench", "features": [i * 0.001 + k for k in range(41)],
            "candle_produced_at": t}


async def _timed_batches(store: PostgresStore, records: list[dict], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        await store.write("predictions", records[i:i + batch])
    return len(records) / (time.perf_counter() - started)


async def measure(dsn: str, rows: int = 20_000, batch: int = 500) -> list[dict]:
    parsed = urlparse(dsn)
    name = f"candleflow_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    target = urlunparse(parsed._replace(path="/" + name))
    results = []
    try:
        for method in ("copy", "executemany"):
            store = await PostgresStore(target, method=method).start()
            records = [_prediction(i, method) for i in range(rows)]
            insert = await _timed_batches(store, records, batch)
            replay = await _timed_batches(store, records, batch)
            await store.close()
            results.append({"what": f"PostgresStore.write predictions, method={method}, batch={batch}",
                            "insert_rows_per_s": round(insert), "replay_rows_per_s": round(replay)})
        store = await PostgresStore(target).start()
        records = [_prediction(i, "sink") for i in range(rows)]
        async with BufferedSink(store.writer("predictions"), batch_size=batch, flush_interval=0.05) as sink:
            started = time.perf_counter()
            for offset, record in enumerate(records):
                await sink.put(record, offset % 4, offset // 4)
            await sink.flush()
            took = time.perf_counter() - started
            stats = sink.stats()
        await store.close()
        results.append({"what": f"BufferedSink -> predictions (executemany), batch={batch}", "rows_per_s": round(rows / took),
                        "batch_latency_ms": stats["batch_latency"], "row_latency_ms": stats["row_latency"],
                        "row_write_cost_ms": stats["row_write_cost"]})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    for row in asyncio.run(measure(args.dsn, args.rows, args.batch)):
        print(json.dumps(row))
