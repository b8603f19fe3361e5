"""Click commands for the ``candleflow`` CLI: ``evaluate``, ``models ...`` and ``retrain-worker``.

Mount them with :func:`attach` (``attach(candleflow.cli.cli)``). Bad arguments raise ``click.UsageError`` or
``ConfigError``, which ``candleflow.cli.main`` prints as one line.

>>> import click
>>> group = click.Group("candleflow")
>>> attach(group)
>>> sorted(group.commands)
['evaluate', 'models', 'retrain-worker']
>>> sorted(models.commands)
['candidate', 'list', 'promote', 'publish-pending', 'register', 'retire', 'rollback', 'show']
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from core.errors import ConfigError

__all__ = ["attach", "evaluate", "models", "retrain_worker", "with_registry"]


def _settings(broker: str | None = None):
    from core.settings import Settings

    return Settings.from_env(**({"broker": broker} if broker else {}))


async def with_registry(fn: Callable[[Any], Awaitable[Any]], publish: bool = False, broker: str | None = None,
                        settings: Any = None) -> Any:
    """Run ``fn(registry)`` with a store, the artifact store and (``publish``) an event publisher, then close them;
    all configured by ``settings`` (default: read from the environment, ``broker`` overriding)."""
    from storage.postgres import PostgresStore
    from training.artifacts import ArtifactStore
    from training.model_events import EventPublisher
    from training.registry import ModelRegistry

    settings = settings or _settings(broker)
    store = PostgresStore(settings.storage.postgres_dsn)
    publisher = await EventPublisher(settings).start() if publish else None
    try:
        return await fn(ModelRegistry(store, ArtifactStore(settings.retrain.artifacts_dir), publisher))
    finally:
        if publisher is not None:
            await publisher.stop()
        await store.close()


def _model_dir(model: str) -> Path:
    """A directory as given, or the verified artifact of a registered version."""
    path = Path(model)
    if path.is_dir():
        return path
    if path.exists() or "/" in model:
        raise click.UsageError(f"--model {model}: not a model directory")

    async def lookup(registry):
        return await registry.artifact_dir(model)
    return asyncio.run(with_registry(lookup))


@click.command()
@click.option("--model", required=True, help="Model or bundle directory, or a registered version.")
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Candle file(s) (the format of data/candles/); more may follow as arguments.")
@click.argument("more", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Signal confidence threshold (default: CANDLEFLOW_SIGNAL_THRESHOLD).")
@click.option("--cost-bps", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Cost per trade (entry + exit) in basis points.")
@click.option("--holdout", type=click.Choice(["validation", "unseen", "all"]), default="validation", show_default=True,
              help="Rows to evaluate: after the rows the model was fit on, after all it saw, or all.")
@click.option("--dead-zone", type=click.FloatRange(min=0), default=None,
              help="Drop rows with |future return| <= this (default: keep every row).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.json, report.txt and a chart here.")
@click.option("--json", "as_json", is_flag=True, help="Also print the report as one JSON object on the last line.")
def evaluate(model: str, data: tuple[Path, ...], more: tuple[Path, ...], threshold: float | None, cost_bps: float,
             holdout: str, dead_zone: float | None, out: Path | None, as_json: bool) -> None:
    """Evaluate a model on candle files: accuracy, AUC, calibration, a cost-aware backtest, baselines."""
    from training.evaluate import EvalConfig, dumps, evaluate_files
    from training.report import summary_text, write_report

    files = list(data) + list(more)
    if not files:
        raise click.UsageError("give at least one candle file with --data")
    config = EvalConfig(threshold=_settings().signal_threshold if threshold is None else threshold,
                        cost_bps=cost_bps, holdout=holdout, dead_zone=dead_zone)
    report = evaluate_files(_model_dir(model), files, config)
    click.echo(summary_text(report))
    if out is not None:
        for path in write_report(report, out):
            click.echo(f"wrote {path}", err=True)
    if as_json:
        click.echo(dumps(report))


@click.group()
def models() -> None:
    """The model registry (PostgreSQL at CANDLEFLOW_POSTGRES_DSN; changes go to model-events)."""


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@models.command("list")
@click.option("--name", default=None, help="Only versions of this model name.")
def list_(name: str | None) -> None:
    """Registered versions, newest first."""
    rows = asyncio.run(with_registry(lambda r: r.list(name)))
    for row in rows:
        click.echo(f"{row['version']:<26} {row['name']:<18} {row['status']:<10} share {row['traffic_share']:.2f}  "
                   f"{row['created_at']}")
    if not rows:
        click.echo("no registered versions", err=True)


@models.command()
@click.argument("version")
def show(version: str) -> None:
    """A version with its metadata, deployments and evaluations, as JSON."""
    _echo_json(asyncio.run(with_registry(lambda r: r.show(version))))


@models.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", default=None, help="Model name (default: from the model's metadata).")
def register(model_dir: Path, name: str | None) -> None:
    """Store MODEL_DIR as an artifact and register its version (not served until promoted)."""
    click.echo(asyncio.run(with_registry(lambda r: r.register(model_dir, name=name))))


@models.command()
@click.argument("version")
@click.option("--note", default="promoted from the CLI", show_default=True)
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def promote(version: str, note: str, broker_: str | None) -> None:
    """Make VERSION the active version (the previous one is retired)."""
    _echo_json(asyncio.run(with_registry(lambda r: r.activate(version, note=note), True, broker_)))


@models.command()
@click.argument("version")
@click.option("--share", type=float, required=True, help="Traffic share, in (0, 1].")
@click.option("--note", default="candidate from the CLI", show_default=True)
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def candidate(version: str, share: float, note: str, broker_: str | None) -> None:
    """Route --share of the traffic to VERSION."""
    if not 0.0 < share <= 1.0:
        raise click.UsageError(f"--share must be in (0, 1], got {share}")
    _echo_json(asyncio.run(with_registry(lambda r: r.set_candidate(version, share, note=note), True, broker_)))


@models.command()
@click.option("--name", default=None, help="Model name (default: the only one in the registry).")
@click.option("--note", default="rollback from the CLI", show_default=True)
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def rollback(name: str | None, note: str, broker_: str | None) -> None:
    """Serve the previously active version again."""
    async def run(registry):
        target = name
        if target is None:
            names = await registry.names()
            if len(names) != 1:
                raise click.UsageError(f"give --name; the registry holds {', '.join(names) or 'no models'}")
            target = names[0]
        return await registry.rollback(target, note=note)
    _echo_json(asyncio.run(with_registry(run, True, broker_)))


@models.command()
@click.argument("version")
@click.option("--note", default="retired from the CLI", show_default=True)
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def retire(version: str, note: str, broker_: str | None) -> None:
    """Stop serving VERSION (e.g. end a candidate's experiment)."""
    _echo_json(asyncio.run(with_registry(lambda r: r.retire(version, note=note), True, broker_)))


@models.command("publish-pending")
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
def publish_pending(broker_: str | None) -> None:
    """Send recorded changes whose model-events never reached the broker."""
    click.echo(f"published {asyncio.run(with_registry(lambda r: r.publish_pending(), True, broker_))} event(s)")


@click.command("retrain-worker")
@click.option("--broker", "broker_", default=None, help="Kafka bootstrap host:port (CANDLEFLOW_BROKER).")
@click.option("--max-requests", type=click.IntRange(1), default=None, help="Stop after this many requests.")
def retrain_worker(broker_: str | None, max_requests: int | None) -> None:
    """Consume retrain-requests (retrain, compare, register a candidate) and judge A/B experiments on outcomes."""
    from training.promotion_worker import PromotionWorker
    from training.retrain_worker import RetrainWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(broker_)
    config = settings.retrain
    if not (config.files or config.use_topics or config.use_postgres):
        raise ConfigError("no data to retrain on: set CANDLEFLOW_RETRAIN_USE_TOPICS=1, CANDLEFLOW_RETRAIN_FILES "
                          "or CANDLEFLOW_RETRAIN_USE_POSTGRES=1")

    async def run(registry):
        stop = asyncio.Event()
        judge = asyncio.create_task(PromotionWorker(settings, registry, config.name).run(stop))
        try:
            await RetrainWorker(settings, config, registry).run(max_requests=max_requests)
        finally:
            stop.set()
            await judge
    try:
        asyncio.run(with_registry(run, True, settings=settings))
    except KeyboardInterrupt:
        pass


def attach(cli: click.Group) -> None:
    """Add ``evaluate``, ``models`` and ``retrain-worker`` to the ``candleflow`` group."""
    for command in (evaluate, models, retrain_worker):
        cli.add_command(command)
