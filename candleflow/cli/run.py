"""``candleflow broker``, ``worker``, ``demo`` and ``replay``: the commands that run the pipeline."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import click

from core.errors import ConfigError
from candleflow.cli.common import full_topic, settings_from

__all__ = ["broker", "demo", "replay", "worker"]


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="TCP port (default: a free one).")
def broker(port: int | None) -> None:
    """Start the embedded Kafka-protocol broker (Tansu) on 127.0.0.1 until Ctrl-C."""
    from streams.broker import EmbeddedBroker

    with EmbeddedBroker(port=port) as b:
        click.echo(f"broker ready at {b.bootstrap}")
        click.echo(f"  export CANDLEFLOW_BROKER={b.bootstrap}")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while b.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        if not b.running:
            raise ConfigError(f"the broker stopped unexpectedly; log: {b.log_path}")
    click.echo("broker stopped")


@click.command()
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def worker(broker_: str | None) -> None:
    """Run a candle worker: features, model inference, predictions and signals."""
    from candleflow.worker import run_worker

    run_worker(settings_from(broker={"bootstrap": broker_}))


@click.command()
@click.option("--candles", "n_candles", type=click.IntRange(10, 100_000), default=2000, help="How many real candles to replay.")
@click.option("--bad", type=click.IntRange(0, 100), default=2, help="Invalid messages to send too (they must land in dead-letters).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=200.0, help="Candles per second to publish.")
@click.option("--json", "as_json", is_flag=True, help="Also print the summary as one JSON object on the last line.")
@click.option("--regime-change", is_flag=True,
              help="Feed a held-out real series whose market changes halfway; report the learning loop's response.")
@click.option("--live/--no-live", default=None,
              help="After the summary, keep the broker and worker up, replaying the candles in a loop for the "
                   "dashboard, until Ctrl-C (default: live in a terminal, unless --json).")
@click.option("--live-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Candles per second once live (default 20).")
def demo(n_candles: int, bad: int, rate: float, as_json: bool, regime_change: bool, live: bool | None,
         live_rate: float | None) -> None:
    """Run everything on this machine: broker, worker, model, real candles; print a summary, then (in a
    terminal) keep it all running with the dashboard live until Ctrl-C."""
    from dataclasses import asdict

    from candleflow.demo import LIVE_RATE, run_demo

    if live is None:
        live = not as_json and sys.stdin.isatty() and sys.stdout.isatty()
    if live_rate is not None and not live:
        raise click.UsageError("--live-rate needs a live demo (--live)")

    def show(summary) -> None:
        click.echo(summary.text())
        if as_json:
            click.echo(json.dumps(asdict(summary), separators=(",", ":")))
        sys.stdout.flush()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up in run_demo's finally
    try:
        summary = run_demo(n_candles=n_candles, bad=bad, rate=rate, regime_change=regime_change, show=show,
                           live_rate=(live_rate or LIVE_RATE) if live else None)
    except KeyboardInterrupt:
        if not live:
            raise
        # Ctrl-C is how a live demo ends: run_demo has stopped the worker and the broker.
        click.echo("demo stopped: the worker and the broker are down", err=True)
        return
    if not summary.complete:
        sys.exit(1)


@click.command()
@click.option("--topic", required=True, help="Candle topic: a full name or one under the prefix (e.g. candles.5m).")
@click.option("--from-offset", type=click.IntRange(0), default=None, help="First offset of every partition.")
@click.option("--from-time", default=None, help="First candle open time, ISO-8601 (UTC unless given), e.g. 2018-01-25.")
@click.option("--to-offset", type=click.IntRange(0), default=None, help="Stop before this offset (default: the end).")
@click.option("--to-time", default=None, help="Candles opening before this time, ISO-8601 (default: to the end).")
@click.option("--by-message-time", is_flag=True, help="Times select by Kafka message time, not by candle open time.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write predictions and signals as JSON lines.")
@click.option("--to-topics", default=None, help="Also publish to <PREFIX>.predictions and <PREFIX>.signals.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Score every candle with this model (default: CANDLEFLOW_MODEL_DIR, then what model-events deployed, as live).")
@click.option("--cold", is_flag=True, help="Start feature states empty instead of warming them up on the candles before the range.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Processes, each replaying a share of the partitions (default: one per core and per 75,000 candles, at most one per partition; 1: in this process).")
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def replay(topic: str, from_offset: int | None, from_time: str | None, to_offset: int | None, to_time: str | None,
           by_message_time: bool, out: Path | None, to_topics: str | None, model_dir: Path | None, cold: bool,
           workers: int | None, broker_: str | None) -> None:
    """Replay a range of a candle topic through the pipeline as a deterministic backtest.

    --from-time/--to-time select candles by their own open time: 2018-01-25 to 2018-01-26 is that day's
    candles, whenever they were produced. Without --model each candle is scored by the models that served
    when it was produced (the model-events topic: A/B candidates included), as the live worker scored it.
    """
    from models.loading import load_model, serving_threads
    from candleflow.replay import replay as run_replay
    from candleflow.replay.parallel import (ReplayOutputs, default_workers, estimated_candles, replay_in_processes,
                                         topic_partitions)
    from core.timestamps import parse_time

    if from_offset is not None and from_time is not None:
        raise click.UsageError("give at most one of --from-offset and --from-time")
    if to_offset is not None and to_time is not None:
        raise click.UsageError("give at most one of --to-offset and --to-time")
    if (from_offset is not None or to_offset is not None) and (from_time is not None or to_time is not None):
        raise click.UsageError("give a range of offsets or of times, not both")
    if from_offset is None and from_time is None and to_offset is None and to_time is None:
        raise click.UsageError("give a range: --from-time/--to-time (candle time) or --from-offset/--to-offset")
    if by_message_time and from_time is None and to_time is None:
        raise click.UsageError("--by-message-time needs --from-time or --to-time")
    settings = settings_from(broker={"bootstrap": broker_}, model_dir=model_dir)
    full = full_topic(settings, topic)
    start, end = (parse_time(t) if t else None for t in (from_time, to_time))
    if start is not None and end is not None and end <= start:
        raise click.UsageError("--to-time must be after --from-time")
    if out is not None and not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: {out.parent} is not a directory")
    serving_threads()  # as the worker serves, so the replay's figures are the worker's
    model = load_model(settings.model_dir, tree_runtime=settings.tree_runtime)  # here too: a broken model fails before any process starts
    # Records are written and sent as the replay makes them: a long range never has to fit in memory.
    outputs = ReplayOutputs(out=out, to_topics=to_topics)
    options = dict(from_offset=from_offset, from_time=start, to_offset=to_offset, to_time=end,
                   by_message_time=by_message_time, warmup=not cold, follow_deployments=model_dir is None)
    workers = workers or default_workers(len(topic_partitions(settings, full)), asyncio.run(estimated_candles(settings, full)))
    if workers == 1:
        report = asyncio.run(run_replay(settings, model, full, output=outputs.build(settings), **options))
    else:
        report = replay_in_processes(settings, settings.model_dir, full, workers=workers, outputs=outputs, **options)
    followed = f", following {report.deployments} model deployments" if report.deployments else ""
    click.echo(f"replayed {report.candles} candles ({report.warmup_candles} more for warm-up) in {report.elapsed_s:.1f} s "
               f"({report.candles_per_s:,.0f} candles/s{followed}): {report.predicted} predictions, "
               f"{report.signalled} signals, {report.dead_letters} invalid", err=True)
    for note in report.notes():
        click.echo(note, err=True)
