"""``candleflow demo``: the whole pipeline on a laptop, from real candles to signals, then a summary.

Starts the embedded broker and a worker process, trains the model if none exists, replays the
bundled real candles (plus a few deliberately invalid messages), waits until every candle is
accounted for, and reports. Every process it starts is stopped when it ends or is interrupted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.broker import EmbeddedBroker, free_port
from streams.candle import Candle
from streams.candle_files import read_candle_file
from streams.consumer import read_topic
from streams.errors import ConfigError
from streams.producer import CandleProducer, Pacer, merge_by_time
from streams.settings import Settings
from streams.stats import percentile
from streams.topics import ensure_topics, topic_specs
from streams.worker_process import WorkerProcess

__all__ = ["run_demo", "DemoSummary", "BUNDLED_CANDLES"]

BUNDLED_CANDLES = Path(__file__).resolve().parent.parent / "data" / "candles"


@dataclass
class DemoSummary:
    candles: int
    valid_candles: int
    predictions: int
    signals: int
    dead_letters: int
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    prediction_latency_ms_p50: float | None
    symbols: list[str]
    model_version: str
    elapsed_s: float
    complete: bool

    def text(self) -> str:
        lat = lambda v: "n/a" if v is None else f"{v:.1f} ms"  # noqa: E731
        return "\n".join([
            "Candleflow demo summary",
            f"  symbols             {', '.join(self.symbols)}",
            f"  model               {self.model_version}",
            f"  candles in          {self.candles} ({self.valid_candles} valid, {self.candles - self.valid_candles} invalid on purpose)",
            f"  predictions out     {self.predictions}",
            f"  signals out         {self.signals}",
            f"  dead letters        {self.dead_letters}",
            f"  candle->signal      p50 {lat(self.latency_ms_p50)}, p99 {lat(self.latency_ms_p99)}",
            f"  candle->prediction  p50 {lat(self.prediction_latency_ms_p50)}",
            f"  elapsed             {self.elapsed_s:.1f} s" + ("" if self.complete else "  (INCOMPLETE: timed out)"),
        ])


def demo_candles(n: int, files: list[Path]) -> list[Candle]:
    """The last ``n`` candles across ``files`` (split evenly), interleaved by time like a live feed."""
    per_file = max(1, n // len(files))
    series = [read_candle_file(f).candles[-per_file:] for f in files]
    return list(merge_by_time(series))[:n]


def ensure_model(model_dir: Path, files: list[Path], progress: bool) -> None:
    """Train the LightGBM bundle (horizons 1..5) unless ``model_dir`` already holds a model."""
    if (model_dir / "bundle.json").exists() or (model_dir / "model.json").exists():
        return
    from training.train import train_horizons

    print(f"no model at {model_dir}: training one on {', '.join(f.name for f in files)} ...", file=sys.stderr)
    train_horizons(files, model_dir, progress=progress)


async def _publish(settings: Settings, candles: list[Candle], bad: int, rate: float | None) -> None:
    async with CandleProducer(settings) as producer:
        pacer = Pacer(rate=rate)
        for candle in candles:
            await pacer.wait(candle)
            await producer.send(candle)
        for i in range(bad):  # what a broken producer might send: bytes that are no Avro, and an impossible candle
            if i % 2 == 0:
                await producer.send_raw(settings.candle_topic(candles[0].timeframe), b"broken", b"\x00not avro at all")
            else:
                c = candles[i % len(candles)]
                impossible = Candle(c.symbol, c.timeframe, c.open_time, c.open, c.low * 0.5, c.low, c.close, c.volume)
                await producer.send(impossible)


async def _collect(settings: Settings, expected_predictions: int, expected_dead: int, timeout_s: float) -> dict[str, Any]:
    topics = [settings.topic("predictions"), settings.topic("signals"), settings.topic("dead-letters")]
    counts = {t: 0 for t in topics}
    signal_latency: list[float] = []
    prediction_latency: list[float] = []
    done = asyncio.Event()

    async def consume() -> None:
        async for topic, record, received in read_topic(settings, topics):
            counts[topic] += 1
            produced = record.get("candle_produced_at") if isinstance(record, dict) else None
            if produced:
                latency = received * 1000 - produced
                (signal_latency if topic == topics[1] else prediction_latency).append(latency)
            if counts[topics[0]] >= expected_predictions and counts[topics[2]] >= expected_dead:
                done.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
        await asyncio.sleep(0)
    except asyncio.TimeoutError:
        pass
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"predictions": counts[topics[0]], "signals": counts[topics[1]], "dead_letters": counts[topics[2]],
            "signal_latency": signal_latency, "prediction_latency": prediction_latency, "complete": done.is_set()}


def run_demo(n_candles: int = 2000, bad: int = 2, rate: float | None = 200.0, model_dir: Path | None = None,
             files: list[Path] | None = None, timeout_s: float = 180.0, progress: bool = True) -> DemoSummary:
    files = files or sorted(BUNDLED_CANDLES.glob("*.csv.gz"))
    if not files:
        raise ConfigError(f"no candle files in {BUNDLED_CANDLES}")
    started = time.monotonic()
    base = Settings.from_env()
    model_dir = Path(model_dir or base.model_dir)
    ensure_model(model_dir, files, progress)
    candles = demo_candles(n_candles, files)
    workdir = Path(tempfile.mkdtemp(prefix="candleflow-demo-"))
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    worker: WorkerProcess | None = None
    try:
        broker.start()
        print(f"embedded broker at {broker.bootstrap}", file=sys.stderr)
        settings = base.replace(broker=broker.bootstrap, app_id=f"candleflow-demo-{os.getpid()}", topic_prefix="demo",
                                data_dir=workdir / "state", model_dir=model_dir.resolve(), web_port=free_port(),
                                timeframes=tuple(sorted({c.timeframe for c in candles})))
        ensure_topics(settings.broker, topic_specs(settings))
        worker = WorkerProcess(settings, workdir / "worker.log").start()
        health = worker.wait_ready()
        print(f"worker ready at http://{settings.web_host}:{settings.web_port} (model {health.get('model_version')}); "
              f"publishing {len(candles)} candles + {bad} invalid", file=sys.stderr)

        async def run() -> dict[str, Any]:
            collector = asyncio.create_task(_collect(settings, len(candles), bad, timeout_s))
            await _publish(settings, candles, bad, rate)
            return await collector

        result = asyncio.run(run())
        return DemoSummary(
            candles=len(candles) + bad, valid_candles=len(candles), predictions=result["predictions"],
            signals=result["signals"], dead_letters=result["dead_letters"],
            latency_ms_p50=percentile(result["signal_latency"], 50), latency_ms_p99=percentile(result["signal_latency"], 99),
            prediction_latency_ms_p50=percentile(result["prediction_latency"], 50),
            symbols=sorted({c.symbol for c in candles}), model_version=str(health.get("model_version")),
            elapsed_s=time.monotonic() - started, complete=result["complete"])
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
