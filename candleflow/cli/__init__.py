"""The ``candleflow`` command line: the group, its commands mounted from one module per family, and
:func:`main`.

- :mod:`candleflow.cli.run`: ``broker``, ``worker``, ``demo``, ``replay``.  :mod:`candleflow.cli.topics`: ``produce``,
  ``produce-outcomes``, ``tail``.  :mod:`candleflow.cli.train`: ``train``, ``distill``.
- :mod:`candleflow.cli.schemas`: ``schemas ...``.  :mod:`candleflow.cli.bench`: ``bench ...``.
- ``training/commands.py``: ``evaluate``, ``models ...``, ``retrain-worker``.

Invalid arguments and configuration end with a one-line message on stderr and a non-zero exit.
"""

from __future__ import annotations

import signal
import sys

import click

from core.errors import CandleflowError
from candleflow.cli import bench, run, schemas, topics, train

__all__ = ["main", "cli"]


@click.group()
def cli() -> None:
    """Candleflow: live market candles to ML trading signals on Kafka and Faust."""


def _mount_commands() -> None:
    from training.commands import attach

    for command in (run.broker, run.worker, topics.produce, topics.produce_outcomes, topics.tail, train.train,
                    train.distill, run.demo, run.replay, schemas.schemas, bench.bench):
        cli.add_command(command)
    attach(cli)


_mount_commands()


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

