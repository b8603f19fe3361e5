"""``candleflow bench ...``: each benchmark of ``bench/`` as a subcommand, its arguments passed through."""

from __future__ import annotations

import sys

import click

__all__ = ["bench"]


@click.group()
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
_bench_command("hand-session", "bench.hand_session", "The README's session by hand: broker, worker, candleflow produce --rate R, then /stats (--rate, --json).")
_bench_command("recovery", "bench.recovery", "Worker restart with many symbols: time to ready, changelog records (--json).")
_bench_command("soak", "bench.soak", "Stream real candles for minutes: throughput, latency and memory over time (--json).")
_bench_command("hostile", "bench.hostile", "1 MiB messages of invalid candles and many symbols against a worker: dead letters, RSS (--json).")
_bench_command("broker-growth", "bench.broker_growth", "The embedded broker alone: its CPU over time for small vs large produce batches (--json).")
