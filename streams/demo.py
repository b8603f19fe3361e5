"""``candleflow demo``: the whole pipeline on a laptop, from real candles to signals, then a summary.

Starts the embedded broker and a worker process, trains the model if none exists, replays the
bundled real candles (plus a few deliberately invalid messages), waits until every candle is
accounted for, and reports. Live (``live_rate``: what ``make demo`` does in a terminal), it then keeps
the broker and worker up and goes on replaying the same candles in a loop at a gentle pace, each loop
with later open times (:func:`loop_candles`), so the dashboard's series keep moving, until Ctrl-C.
Every process it starts is stopped when it ends or is interrupted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from streams.broker import EmbeddedBroker, free_port
from core.candle import Candle
from core.candle_files import read_candle_file
from kafka_io.consumer import read_topic
from streams.demo_loop import regime_loop
from core.errors import ConfigError
from streams.producer import CandleProducer, Pacer, merge_by_time
from streams.regime_change import alternate_moves
from core.settings import Settings
from core.latency import percentile
from core.topics import ensure_topics, topic_specs
from streams.worker_process import WorkerProcess

__all__ = ["run_demo", "DemoSummary", "BUNDLED_CANDLES", "loop_candles", "LIVE_RATE"]

LIVE_RATE = 20.0  # candles per second once live: the charts move, the laptop stays idle

BUNDLED_CANDLES = Path(__file__).resolve().parent.parent / "data" / "candles"
REGIME_SERIES = BUNDLED_CANDLES / "held-out" / "ETC-BTC_5m.csv.gz"  # real candles no bundled model is trained on


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
    regime_change: dict[str, Any] | None = None  # --regime-change: what the learning loop did (streams.demo_loop)
    signals_by_direction: dict[str, int] = field(default_factory=dict)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)  # 'kind: reason' -> messages
    members: dict[str, str] = field(default_factory=dict)  # ensemble member -> version, as the predictions name them

    def text(self) -> str:
        lat = lambda v: "n/a" if v is None else f"{v:.1f} ms"  # noqa: E731
        return "\n".join([
            "Candleflow demo summary",
            f"  symbols             {', '.join(self.symbols)}",
            f"  model               {self.model_version}",
            f"  candles in          {self.candles} ({self.valid_candles} valid, {self.candles - self.valid_candles} invalid on purpose)",
            f"  predictions out     {self.predictions}",
            f"  model members       {', '.join(f'{k} {v}' for k, v in sorted(self.members.items())) or 'n/a'}",
            f"  signals out         {self.signals}" + (f" ({', '.join(f'{n} {d}' for d, n in sorted(self.signals_by_direction.items()))})"
                                                       if self.signals_by_direction else ""),
            f"  dead letters        {self.dead_letters}",
            *(f"    {n} x {reason}" for reason, n in sorted(self.dead_letter_reasons.items())),
            f"  candle->signal      p50 {lat(self.latency_ms_p50)}, p99 {lat(self.latency_ms_p99)}",
            f"  candle->prediction  p50 {lat(self.prediction_latency_ms_p50)}",
            f"  elapsed             {self.elapsed_s:.1f} s" + ("" if self.complete else "  (INCOMPLETE: timed out)"),
            *self._regime_lines(),
        ])

    def _regime_lines(self) -> list[str]:
        r = self.regime_change
        if r is None:
            return []
        lines = ["Regime change (the learning loop)",
                 f"  market changed at   candle {r['changed_at']} of {r['candles']} ({r['symbol']}, every other move mirrored)"]
        if r.get("request") is None:
            return lines + ["  retrain request     none (the drift watches saw no change)"]
        q, trial = r["request"], r.get("retrain") or {}
        lines += [f"  retrain request     {q['after_candles']} candles after the change: {', '.join(q['reasons'])}",
                  f"  change seen since   {q['since_from_change']:+d} candles from the true change"]
        if trial:
            lines += [f"  retrained on        {trial['candles']} candles from the candle topic (since {trial['from_change']:+d})",
                      f"  new model           {trial['version']}: {trial['decision']} ({trial['reason']})"]
        promotion = r.get("promotion")
        if promotion:
            lines.append(f"  shadow A/B test     {promotion['decision']}: {promotion['reason']}")
            if promotion.get("paired_outcomes"):
                lines.append(f"  on the same candles accuracy {promotion['accuracy_active']:.3f} (serving) vs "
                             f"{promotion['accuracy_candidate']:.3f} (candidate), {promotion['paired_outcomes']:,} paired outcomes")
            if promotion.get("serving"):
                state = "serving it" if promotion.get("worker_serves_it") else "NOT serving it yet"
                lines.append(f"  the worker          {state}: {promotion['serving']}")
        return lines


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
    directions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    members: dict[str, str] = {}
    signal_latency: list[float] = []
    prediction_latency: list[float] = []
    done = asyncio.Event()

    async def consume() -> None:
        async for topic, record, received in read_topic(settings, topics):
            counts[topic] += 1
            if isinstance(record, dict):
                if topic == topics[0]:
                    members.update(record.get("model_versions") or {})
                elif topic == topics[1]:
                    directions[record["direction"]] += 1
                elif topic == topics[2]:
                    reasons[_reason(record)] += 1
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
            "signal_latency": signal_latency, "prediction_latency": prediction_latency, "complete": done.is_set(),
            "directions": dict(directions), "reasons": dict(reasons), "members": members}


def _reason(dead_letter: dict[str, Any]) -> str:
    """A dead letter's kind and reason, on one line of the summary."""
    reason = " ".join(str(dead_letter.get("reason") or "unknown").split())
    return f"{dead_letter.get('error_type', 'validation')}: {reason if len(reason) <= 90 else reason[:87] + '...'}"


def loop_candles(candles: list[Candle], loop: int) -> list[Candle]:
    """``candles`` again for the ``loop``-th time (1, 2, ...), every open time moved on by the span they
    cover plus one candle, so each series continues where the last loop ended.

    >>> c = [Candle("ETH-BTC", "5m", 0, 1.0, 1.0, 1.0, 1.0, 1.0), Candle("ETH-BTC", "5m", 300_000, 1.0, 1.0, 1.0, 1.0, 1.0)]
    >>> [x.open_time for x in loop_candles(c, 2)]
    [1200000, 1500000]
    """
    step = min((b.open_time - a.open_time for a, b in zip(candles, candles[1:]) if b.open_time > a.open_time), default=0)
    span = max(c.open_time for c in candles) - min(c.open_time for c in candles) + (step or 300_000)
    return [dataclasses.replace(c, open_time=c.open_time + loop * span) for c in candles]


async def _live(settings: Settings, candles: list[Candle], rate: float) -> None:
    """The demo's candles in a loop at ``rate`` candles/s (later open times each loop), until cancelled."""
    async with CandleProducer(settings) as producer:
        pacer = Pacer(rate=rate)
        for loop in itertools.count(1):
            for candle in loop_candles(candles, loop):
                await pacer.wait(candle)
                await producer.send(candle)


def live_help(settings: Settings, candle: Candle, rate: float) -> str:
    """What to look at while the demo runs live: the dashboard and the commands worth trying."""
    web = f"http://{settings.web_host}:{settings.web_port}"
    env = f"CANDLEFLOW_BROKER={settings.broker} CANDLEFLOW_TOPIC_PREFIX={settings.topic_prefix}"
    return "\n".join([
        f"Live: replaying the candles in a loop at {rate:g} candles/s. Ctrl-C stops everything.",
        f"  dashboard         {web}/",
        f"  latest signals    curl {web}/signals/latest",
        f"  its features      curl {web}/features/{candle.symbol}/{candle.timeframe}",
        f"  models, drift     curl {web}/models",
        f"  signals as sent   {env} candleflow tail signals --from-end",
    ])


def run_demo(n_candles: int = 2000, bad: int = 2, rate: float | None = 200.0, model_dir: Path | None = None,
             files: list[Path] | None = None, timeout_s: float = 180.0, progress: bool = True,
             regime_change: bool = False, show: Callable[[DemoSummary], None] | None = None,
             live_rate: float | None = None) -> DemoSummary:
    """``regime_change``: instead of ``n_candles`` of the bundled files, a real series no model was trained
    on (:data:`REGIME_SERIES`) whose market changes halfway (:func:`streams.regime_change.alternate_moves`);
    the summary then says whether and when the worker asked for a retrain, what the retrain on the candle
    topic from the change it saw gives, and (with the registry in PostgreSQL) what the shadow A/B test
    decided and which version the worker serves at the end (:mod:`streams.demo_loop`).

    ``show`` is given the summary as soon as it is made. ``live_rate``: then stay up, replaying the candles
    in a loop at that many candles/s, until interrupted (KeyboardInterrupt propagates, after clean-up)."""
    files = files or sorted(BUNDLED_CANDLES.glob("*.csv.gz"))
    if not files:
        raise ConfigError(f"no candle files in {BUNDLED_CANDLES}")
    started = time.monotonic()
    base = Settings.from_env()
    model_dir = Path(model_dir or base.model_dir)
    ensure_model(model_dir, files, progress)
    if regime_change:
        held_out = read_candle_file(REGIME_SERIES).candles
        changed_at = len(held_out) // 2
        candles = alternate_moves(held_out, changed_at)
    else:
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

        async def run() -> tuple[dict[str, Any], dict[str, Any] | None]:
            # The loop (a retrain, a shadow A/B test) adds minutes between the first candle and the last.
            collector = asyncio.create_task(_collect(settings, len(candles), bad, timeout_s + (900 if regime_change else 0)))
            if not regime_change:
                await _publish(settings, candles, bad, rate)
                return await collector, None
            invalid = bad  # sent with the first part

            async def publish_part(part: list[Candle]) -> None:
                nonlocal invalid
                if part:
                    await _publish(settings, part, invalid, rate)
                    invalid = 0

            loop = await regime_loop(settings, model_dir, candles, changed_at, workdir, publish_part)
            return await collector, loop

        result, regime = asyncio.run(run())
        summary = DemoSummary(
            candles=len(candles) + bad, valid_candles=len(candles), predictions=result["predictions"],
            signals=result["signals"], dead_letters=result["dead_letters"],
            latency_ms_p50=percentile(result["signal_latency"], 50), latency_ms_p99=percentile(result["signal_latency"], 99),
            prediction_latency_ms_p50=percentile(result["prediction_latency"], 50),
            symbols=sorted({c.symbol for c in candles}), model_version=str(health.get("model_version")),
            elapsed_s=time.monotonic() - started, complete=result["complete"], regime_change=regime,
            signals_by_direction=result["directions"], dead_letter_reasons=result["reasons"], members=result["members"])
        if show is not None:
            show(summary)
        if live_rate is not None:
            print(live_help(settings, candles[0], live_rate), file=sys.stderr, flush=True)
            asyncio.run(_live(settings, candles, live_rate))
        return summary
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)

