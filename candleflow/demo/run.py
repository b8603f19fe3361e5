"""``candleflow demo``: the whole pipeline on a laptop, from real candles to signals, then a summary.

Starts the embedded broker and a worker process, trains the model if none exists, replays the
bundled real candles (plus a few deliberately invalid messages), waits until every candle is
accounted for, and reports. Live (``live_rate``: what ``make demo`` does in a terminal), it then keeps
the broker and worker up and goes on replaying the same candles in a loop at a gentle pace, each loop
with later open times (:func:`candleflow.demo.feed.loop_candles`), so the dashboard's series keep moving,
until Ctrl-C. Every process it starts is stopped when it ends or is interrupted.

What it sends: :mod:`candleflow.demo.feed`; what it reads back: :mod:`candleflow.demo.collect`; what it reports:
:mod:`candleflow.demo.summary`; the learning loop of ``--regime-change``: :mod:`candleflow.demo.loop`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from streams.broker import EmbeddedBroker, free_port
from core.candle import Candle
from core.candle_files import read_candle_file
from candleflow.demo.collect import collect_outputs
from candleflow.demo.feed import demo_candles, feed_live, publish_candles
from candleflow.demo.loop import regime_loop
from candleflow.demo.summary import DemoSummary
from core.errors import ConfigError
from streams.regime_change import alternate_moves
from core.settings import Settings
from core.latency import percentile
from core.topics import ensure_topics, topic_specs
from streams.worker_process import WorkerProcess

__all__ = ["run_demo", "BUNDLED_CANDLES", "ensure_model", "LIVE_RATE"]

LIVE_RATE = 20.0  # candles per second once live: the charts move, the laptop stays idle

BUNDLED_CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
REGIME_SERIES = BUNDLED_CANDLES / "held-out" / "ETC-BTC_5m.csv.gz"  # real candles no bundled model is trained on


def ensure_model(model_dir: Path, files: list[Path], progress: bool, distil: bool = True, **options) -> None:
    """Train the default bundle (LightGBM per horizon 1..5 and the Mamba sequence member,
    :mod:`training.default_bundle`; ``options`` go to it) unless ``model_dir`` already holds a model; with
    ``distil``, then its distilled student (``<model>/student/``, ~20 s), which serves the batches the full
    model would score over the latency budget (streams/serving_chain.py)."""
    if (model_dir / "bundle.json").exists() or (model_dir / "model.json").exists():
        return
    from training.default_bundle import train_default_bundle
    from training.train import read_series

    print(f"no model at {model_dir}: training one on {', '.join(f.name for f in files)} "
          "(LightGBM per horizon, then the Mamba sequence model: a few minutes on a CPU) ...", file=sys.stderr)
    series = read_series(files)
    train_default_bundle(series, model_dir, progress=progress, **options)
    if distil:
        from training.distill import distill_series

        print("distilling its student (one small LightGBM per horizon, for the latency budget) ...", file=sys.stderr)
        report = distill_series(model_dir, series, progress=progress)
        print(f"student {report.version}: accuracy kept {report.accuracy_kept}, x faster per row {report.speed_up}",
              file=sys.stderr)


def live_help(settings: Settings, candle: Candle, rate: float) -> str:
    """What to look at while the demo runs live: the dashboard and the commands worth trying."""
    web = f"http://{settings.web.host}:{settings.web.port}"
    env = f"CANDLEFLOW_BROKER={settings.broker.bootstrap} CANDLEFLOW_TOPIC_PREFIX={settings.topic_prefix}"
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
    decided and which version the worker serves at the end (:mod:`candleflow.demo.loop`).

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
        settings = base.replace(broker={"bootstrap": broker.bootstrap}, app_id=f"candleflow-demo-{os.getpid()}", topic_prefix="demo",
                                data_dir=workdir / "state", model_dir=model_dir.resolve(), web={"port": free_port()},
                                timeframes=tuple(sorted({c.timeframe for c in candles})))
        ensure_topics(settings.broker.bootstrap, topic_specs(settings))
        worker = WorkerProcess(settings, workdir / "worker.log").start()
        health = worker.wait_ready()
        print(f"worker ready at http://{settings.web.host}:{settings.web.port} (model {health.get('model_version')}); "
              f"publishing {len(candles)} candles + {bad} invalid", file=sys.stderr)

        async def run() -> tuple[dict[str, Any], dict[str, Any] | None]:
            # The loop (a retrain, a shadow A/B test) adds minutes between the first candle and the last.
            collector = asyncio.create_task(collect_outputs(settings, len(candles), bad, timeout_s + (900 if regime_change else 0)))
            if not regime_change:
                await publish_candles(settings, candles, bad, rate)
                return await collector, None
            invalid = bad  # sent with the first part

            async def publish_part(part: list[Candle]) -> None:
                nonlocal invalid
                if part:
                    await publish_candles(settings, part, invalid, rate)
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
            asyncio.run(feed_live(settings, candles, live_rate))
        return summary
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
