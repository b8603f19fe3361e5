"""The ``candleflow`` command line.

Invalid arguments and configuration end with a one-line message on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import click

from core.errors import CandleflowError, ConfigError
from core.settings import Settings

__all__ = ["main", "cli"]


def _settings(**overrides: object) -> Settings:
    return Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})


@click.group()
def cli() -> None:
    """Candleflow: live market candles to ML trading signals on Kafka and Faust."""


@cli.command()
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


@cli.command()
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def worker(broker_: str | None) -> None:
    """Run a candle worker: features, model inference, predictions and signals."""
    from streams.worker import run_worker

    run_worker(_settings(broker=broker_))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", default=None, help="Symbol for every file (default: from the file name).")
@click.option("--timeframe", default=None, help="Timeframe for every file (default: from the file name).")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None, help="Replay at X times real time.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Publish N candles per second.")
@click.option("--max", "max_", is_flag=True, help="Publish as fast as possible (the default).")
@click.option("--batch", type=click.IntRange(0), default=0, help="Send CandleBatch messages of up to N candles (0: one candle per message).")
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def produce(files: tuple[Path, ...], symbol: str | None, timeframe: str | None, speed: float | None,
            rate: float | None, max_: bool, batch: int, broker_: str | None) -> None:
    """Publish candle files (CSV, CSV.gz, Parquet) as Avro to candles.<timeframe>, keyed by symbol."""
    from tqdm import tqdm

    from core.candle_files import read_candle_file
    from kafka_io.security import confluent_security
    from streams.producer import CandleProducer, Pacer, merge_by_time
    from core.topics import ensure_topics, topic_specs

    if sum(x is not None and x is not False for x in (speed, rate, max_ or None)) > 1:
        raise click.UsageError("choose one of --speed, --rate and --max")
    settings = _settings(broker=broker_)
    loaded = [read_candle_file(f, symbol=symbol, timeframe=timeframe) for f in files]
    for f in loaded:
        for row, reason in f.rejected[:5]:
            click.echo(f"{f.path.name}: row {row} skipped: {reason}", err=True)
        if len(f.rejected) > 5:
            click.echo(f"{f.path.name}: {len(f.rejected) - 5} more rows skipped", err=True)
    candles = list(merge_by_time([f.candles for f in loaded]))
    settings = settings.replace(timeframes=tuple(sorted({c.timeframe for c in candles} | set(settings.timeframes))))
    ensure_topics(settings.broker, topic_specs(settings), client_config=confluent_security(settings))

    async def run() -> None:
        async with CandleProducer(settings) as producer:
            pacer = Pacer(rate=rate, speed=speed)
            with tqdm(total=len(candles), unit="candle", desc="publishing", file=sys.stderr) as bar:
                pending: list = []
                for candle in candles:
                    await pacer.wait(candle)
                    if batch:
                        pending.append(candle)
                        if len(pending) >= batch:
                            await producer.send_batch(pending)
                            pending = []
                    else:
                        await producer.send(candle)
                    bar.update()
                if pending:
                    await producer.send_batch(pending)

    started = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - started
    skipped = sum(len(f.rejected) for f in loaded)
    click.echo(f"published {len(candles)} candles ({skipped} invalid rows skipped) in {elapsed:.1f} s "
               f"({len(candles) / max(elapsed, 1e-9):,.0f} candles/s)", err=True)


@cli.command("produce-outcomes")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def produce_outcomes(file: Path, broker_: str | None) -> None:
    """Publish trade results (JSON lines: signal_id or prediction_id, symbol, timeframe, open_time, horizon,
    model_version, entry_price, exit_price, pnl, status) to the outcomes topic as TRADE outcomes."""
    from core.errors import InvalidInput
    from kafka_io.security import confluent_security
    from core.topics import ensure_topics, topic_specs
    from streams.trade_producer import TradeProducer, read_trade_results

    settings = _settings(broker=broker_)
    ensure_topics(settings.broker, topic_specs(settings), client_config=confluent_security(settings))
    sent = skipped = 0

    async def run() -> None:
        nonlocal sent, skipped
        async with TradeProducer(settings) as producer:
            for number, item in read_trade_results(file):
                try:
                    if isinstance(item, InvalidInput):
                        raise item
                    await producer.send(item)
                    sent += 1
                except InvalidInput as exc:
                    skipped += 1
                    click.echo(f"{file.name}: line {number} skipped: {exc}", err=True)

    asyncio.run(run())
    click.echo(f"published {sent} trade results ({skipped} invalid lines skipped)", err=True)
    if skipped and not sent:
        raise SystemExit(1)


@cli.command()
@click.argument("topic")
@click.option("--from-beginning/--from-end", default=True, help="Start at the oldest message (default) or only new ones.")
@click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds without a message (default: follow forever).")
@click.option("--symbol", "symbols", multiple=True, help="Only these symbols (repeat for several).")
@click.option("--direction", type=click.Choice(["UP", "DOWN"], case_sensitive=False), default=None, help="Only this direction.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=None, help="Only records at least this confident.")
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def tail(topic: str, from_beginning: bool, idle_timeout: float | None, symbols: tuple[str, ...], direction: str | None,
         min_confidence: float | None, broker_: str | None) -> None:
    """Print the decoded messages of TOPIC (signals, predictions, dead-letters, ...) as JSON, one per line.

    TOPIC is a full name or a name under the configured prefix (e.g. "signals").
    """
    from kafka_io.consumer import json_safe, read_topic

    settings = _settings(broker=broker_)
    full = topic if topic.startswith(settings.topic_prefix + ".") else settings.topic(topic)

    def wanted(record: dict) -> bool:
        return ((not symbols or record.get("symbol") in symbols)
                and (direction is None or record.get("direction") == direction.upper())
                and (min_confidence is None or (record.get("confidence") or 0.0) >= min_confidence))

    async def run() -> None:
        async for _, record, _ in read_topic(settings, [full], from_beginning, idle_timeout):
            if isinstance(record, Exception):
                click.echo(json.dumps({"error": str(record)}))
            elif wanted(record):
                click.echo(json.dumps(json_safe(record), separators=(",", ":")))

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@cli.command()
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candle file(s) to train on (repeat the option for several).")
@click.option("--topic", default=None, help="Train on every candle of this candle topic instead (e.g. candles.5m).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model directory to write.")
@click.option("--horizons", default="1,2,3,4,5", show_default=True,
              help="Candles ahead to predict: one (a single LightGBM model) or several (a bundle with an ensemble).")
@click.option("--with-mamba", is_flag=True, help="Also train the Mamba sequence model into the bundle (minutes on a CPU).")
@click.option("--mamba-epochs", type=click.IntRange(1, 200), default=None, help="Epochs for the Mamba model.")
def train(data: tuple[Path, ...], topic: str | None, out: Path, horizons: str, with_mamba: bool,
          mamba_epochs: int | None) -> None:
    """Train on candle files (or a candle topic) and export ONNX with metadata (model.json or bundle.json)."""
    from training.train import train_horizons_on_series, train_on_series

    try:
        chosen = sorted({int(h) for h in horizons.split(",") if h.strip()})
    except ValueError:
        raise click.UsageError(f"--horizons must be integers like 1,2,3, got {horizons!r}") from None
    if not chosen or not all(1 <= h <= 5 for h in chosen):
        raise click.UsageError("--horizons must be within 1..5")
    if bool(data) == bool(topic):
        raise click.UsageError("give candle files with --data, or --topic, not both")
    if topic:
        from training.topic_data import series_from_topic

        settings = _settings()
        full = topic if topic.startswith(settings.topic_prefix + ".") else settings.topic(topic)
        series, invalid = asyncio.run(series_from_topic(settings, full))
        click.echo(f"{sum(map(len, series))} candles of {len(series)} series from {full} ({invalid} invalid left out)", err=True)
    else:
        from training.train import read_series

        series = read_series(list(data))
    if len(chosen) == 1 and not with_mamba:
        info = train_on_series(series, out, horizon=chosen[0], progress=True)
    else:
        info = train_horizons_on_series(series, out, horizons=chosen, progress=True)
        if with_mamba:
            from training.mamba import train_mamba_on_series

            options = {"epochs": mamba_epochs} if mamba_epochs else {}
            train_mamba_on_series(series, out / "mamba", progress=True, **options)
    click.echo(json.dumps(info.to_dict() if hasattr(info, "to_dict") else info, default=str, indent=2))


@cli.command()
@click.option("--teacher", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="The model or bundle to learn from.")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candle file(s) (repeat the option for several).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Directory for the student.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Weight of the hard labels.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object on the last line.")
def distill(teacher: Path, data: tuple[Path, ...], out: Path, temperature: float, alpha: float, as_json: bool) -> None:
    """Distil a model or bundle into a shallow, fast LightGBM student; report accuracy kept and speed-up."""
    from training.distill import distill as run_distill

    report = run_distill(teacher, list(data), out, temperature=temperature, alpha=alpha, progress=True)
    click.echo(f"student {report.version}: accuracy {report.student_accuracy:.4f} vs teacher {report.teacher_accuracy:.4f} "
               f"({report.accuracy_preservation:.1%} kept); {report.speed_up['batch_1']:.1f}x faster for one row, "
               f"{report.speed_up['batch_64']:.1f}x at batch 64")
    if as_json:
        click.echo(json.dumps(report.to_dict(), separators=(",", ":")))


@cli.command()
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

    from streams.demo import LIVE_RATE, run_demo

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


@cli.command()
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
    from models.loading import load_model
    from streams.replay import replay as run_replay
    from streams.replay_parallel import (ReplayOutputs, default_workers, estimated_candles, replay_in_processes,
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
    settings = _settings(broker=broker_, model_dir=model_dir)
    full = topic if topic.startswith(settings.topic_prefix + ".") else settings.topic(topic)
    start, end = (parse_time(t) if t else None for t in (from_time, to_time))
    if start is not None and end is not None and end <= start:
        raise click.UsageError("--to-time must be after --from-time")
    if out is not None and not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: {out.parent} is not a directory")
    model = load_model(settings.model_dir)  # here too: a broken model fails before any process starts
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


@cli.group()
def schemas() -> None:
    """The Avro contract: ids, subjects and self-contained schema files (docs/schemas.md)."""


def _schema_rows() -> list[dict]:
    from schemas.export import schema_rows
    from schemas.registry_api import topic_subjects
    from schemas.store import LocalSchemaStore

    return schema_rows(LocalSchemaStore(), topic_subjects(_settings()))


@schemas.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def schemas_list(as_json: bool) -> None:
    """Every record with its schema id and the subjects a worker serves it under."""
    rows = _schema_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['id']:>10}  {', '.join(r['subjects'])}")


@schemas.command("show")
@click.argument("name")
def schemas_show(name: str) -> None:
    """The self-contained schema of record NAME (e.g. Candle), as a registry serves it."""
    from schemas.loader import SCHEMA_NAMES, load_schema

    if name not in SCHEMA_NAMES:
        raise click.BadParameter(f"unknown record {name!r}; one of {', '.join(SCHEMA_NAMES)}", param_hint="NAME")
    row = next(r for r in _schema_rows() if r["name"] == name)
    click.echo(f"// id {row['id']}; subjects: {', '.join(row['subjects'])}", err=True)
    click.echo(json.dumps(load_schema(name), indent=2))


@schemas.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def schemas_export(folder: Path) -> None:
    """Write every record as a self-contained .avsc file, and registry-import.json, into FOLDER."""
    from schemas.export import export_schemas
    from schemas.registry_api import topic_subjects
    from schemas.store import LocalSchemaStore

    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} is not empty: export writes into a new or empty folder")
    for path in export_schemas(folder, LocalSchemaStore(), topic_subjects(_settings())):
        click.echo(path)


@cli.group()
def bench() -> None:
    """Benchmarks: figures and comparisons side by side in one run (see BENCHMARKS.md)."""


def _bench_command(name: str, module: str, help_text: str) -> None:
    @bench.command(name, help=help_text, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def run(args: tuple[str, ...]) -> None:
        import importlib

        sys.exit(importlib.import_module(module).main(list(args)))


_bench_command("features", "bench.features", "Feature engine: per candle, batched, and against recomputing (--json, --quick).")
_bench_command("inference", "bench.inference", "Model inference: ONNX Runtime vs native, batches, 1,000 symbols (--json).")
_bench_command("replay", "bench.replay", "Replay speed: a 2,000-symbol universe and the real files against the in-process step (--json).")
_bench_command("pipeline", "bench.pipeline", "Whole pipeline vs raw aiokafka, a Faust forwarder and Quix Streams (--json, --quick).")
_bench_command("recovery", "bench.recovery", "Worker restart with many symbols: time to ready, changelog records (--json).")
_bench_command("soak", "bench.soak", "Stream real candles for minutes: throughput, latency and memory over time (--json).")
_bench_command("hostile", "bench.hostile", "1 MiB messages of invalid candles and many symbols against a worker: dead letters, RSS (--json).")
_bench_command("broker-growth", "bench.broker_growth", "The embedded broker alone: its CPU over time for small vs large produce batches (--json).")


def _mount_training_commands() -> None:
    from training.commands import attach

    attach(cli)


_mount_training_commands()


def main() -> None:
    # A shell starts background commands with SIGINT ignored, and children inherit that: restore Ctrl-C /
    # kill -INT, so `candleflow demo &` (or a script's worker) still stops and cleans up on an interrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cli.main(standalone_mode=False, prog_name="candleflow")
    except click.exceptions.Abort:
        click.echo("candleflow: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"candleflow: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except CandleflowError as exc:
        click.echo(f"candleflow: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("candleflow: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
