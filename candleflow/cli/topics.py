"""``candleflow produce``, ``produce-outcomes`` and ``tail``: candle files and trade results onto topics, and
any topic's records off it as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import click

from candleflow.cli.common import full_topic, settings_from

__all__ = ["produce", "produce_outcomes", "tail"]


@click.command()
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
    settings = settings_from(broker={"bootstrap": broker_})
    loaded = [read_candle_file(f, symbol=symbol, timeframe=timeframe) for f in files]
    for f in loaded:
        for row, reason in f.rejected[:5]:
            click.echo(f"{f.path.name}: row {row} skipped: {reason}", err=True)
        if len(f.rejected) > 5:
            click.echo(f"{f.path.name}: {len(f.rejected) - 5} more rows skipped", err=True)
    candles = list(merge_by_time([f.candles for f in loaded]))
    settings = settings.replace(timeframes=tuple(sorted({c.timeframe for c in candles} | set(settings.timeframes))))
    ensure_topics(settings.broker.bootstrap, topic_specs(settings), client_config=confluent_security(settings))

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


@click.command("produce-outcomes")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def produce_outcomes(file: Path, broker_: str | None) -> None:
    """Publish trade results (JSON lines: signal_id or prediction_id, symbol, timeframe, open_time, horizon,
    model_version, entry_price, exit_price, pnl, status) to the outcomes topic as TRADE outcomes."""
    from core.errors import InvalidInput
    from kafka_io.security import confluent_security
    from core.topics import ensure_topics, topic_specs
    from streams.trade_producer import TradeProducer, read_trade_results

    settings = settings_from(broker={"bootstrap": broker_})
    ensure_topics(settings.broker.bootstrap, topic_specs(settings), client_config=confluent_security(settings))
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


@click.command()
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

    settings = settings_from(broker={"bootstrap": broker_})
    full = full_topic(settings, topic)

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
