"""Replay speed against the batch step's in-process rate (issue 20), side by side in one run.

Run: ``python -m bench.replay [--json] [--symbols N] [--steps N]`` (``candleflow bench replay``).

On one embedded broker, two topics are written and replayed from their start with
:func:`candleflow.replay.replay` (the worker's decode and batch step, learners and online member on):

- ``universe``: ``--symbols`` symbols (default 2,000) closing together on one 5m grid for ``--steps``
  candles each (``bench._pipeline_data.Universe``: real series, shifted and scaled), one CandleBatch
  message per partition per close, as the pipeline bench's (e) row feeds a worker;
- ``files``: the bundled real files, one Candle message each (one series per symbol: every candle moves
  its partition's clock, so the online member makes it one step per candle by nature).

The replay rows count their records (``NoRecords``); ``universe_to_file`` replays the universe again
writing every record to a sorted JSON-lines file, as ``candleflow replay --out`` does. Those run in this
process (``--workers 1``); the ``..._processes`` rows run them as ``candleflow replay`` does by default,
one process per core (at most one per partition: :mod:`candleflow.replay.parallel`). Beside them, the
``compute`` row (``bench.compute``: the batch step in-process, 2,000 symbols, CPU time per candle).
Goal: the universe replay, as ``candleflow replay`` runs it, reaches at least 80 % of the compute row's rate;
the one-process figure is printed beside it.
Figures: candles/s over the wall time of the whole replay (fetching, decoding, stepping, writing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = ["main", "run"]

GOAL_SHARE = 0.8


async def _produce(settings: Any, batches: list[list[Any]]) -> None:
    from streams.producer import CandleProducer

    async with CandleProducer(settings) as producer:
        for candles in batches:
            await producer.send_batch(candles)
        await producer.flush()


async def _produce_each(settings: Any, candles: list[Any]) -> None:
    from streams.producer import CandleProducer

    async with CandleProducer(settings) as producer:
        for c in candles:
            await producer.send(c)
        await producer.flush()


def run(symbols: int, steps: int, model_dir: Path | None, log=lambda s: print(s, file=sys.stderr, flush=True)) -> dict[str, Any]:
    from bench._pipeline_data import Universe
    from bench.compute import compute_row
    from bench.pipeline import ensure_model
    from models.loading import load_model
    from streams.broker import EmbeddedBroker
    from core.candle_files import read_candle_file
    from candleflow.demo import BUNDLED_CANDLES
    from streams.producer import merge_by_time
    from candleflow.replay import replay
    from candleflow.replay.parallel import ReplayOutputs, default_workers, replay_in_processes
    from core.settings import Settings
    from core.topics import TopicSpec, ensure_topics

    model_dir = ensure_model(model_dir, log)
    model = load_model(model_dir)
    figures: dict[str, Any] = {"model": model.version, "symbols": symbols, "steps": steps, "rows": {}}
    compute = figures["rows"]["compute"] = compute_row(model_dir)  # first: its process holds nothing else yet
    compute_rate = 1e6 / compute["cpu_us_per_candle"]
    log(f"  compute: {compute['cpu_us_per_candle']} us/candle = {compute_rate:,.0f} candles/s")
    with EmbeddedBroker() as broker:
        run_id = uuid.uuid4().hex[:8]
        universe = Settings.from_env(broker={"bootstrap": broker.bootstrap}, model_dir=model_dir, topic_prefix=f"bench-universe-{run_id}")
        files = Settings.from_env(broker={"bootstrap": broker.bootstrap}, model_dir=model_dir, topic_prefix=f"bench-files-{run_id}")
        for s in (universe, files):
            ensure_topics(broker.bootstrap, [TopicSpec(s.candle_topic("5m"), s.partitions)])
        u = Universe(symbols)
        log(f"universe: {u.describe()}; {steps} closes")
        asyncio.run(_produce(universe, [[u.candle(k, step) for k in range(symbols)] for step in range(steps)]))
        real = list(merge_by_time([read_candle_file(p).candles for p in sorted(BUNDLED_CANDLES.glob("*.csv.gz"))]))
        asyncio.run(_produce_each(files, real))
        scratch = Path(tempfile.mkdtemp(prefix="bench-replay-"))
        workers = default_workers(universe.partitions)
        figures["workers"] = workers
        for name, settings, n in (("universe", universe, symbols * steps), ("universe_to_file", universe, symbols * steps),
                                  ("universe_processes", universe, symbols * steps),
                                  ("universe_to_file_processes", universe, symbols * steps), ("files", files, len(real))):
            topic = settings.candle_topic("5m")
            to_file = name.startswith("universe_to_file")
            outputs = ReplayOutputs(out=scratch / "replay.jsonl" if to_file else None)
            if name.endswith("_processes"):
                report = replay_in_processes(settings, model_dir, topic, workers=workers, outputs=outputs,
                                             progress=False, from_offset=0)
            else:
                report = asyncio.run(replay(settings, model, topic, from_offset=0, progress=False,
                                            output=outputs.build(settings)))
            assert report.candles == n, (name, report.candles, n)
            figures["rows"][name] = {"candles": report.candles, "elapsed_s": round(report.elapsed_s, 2),
                                     "candles_per_s": round(report.candles_per_s), "predictions": report.predicted,
                                     "signals": report.signalled}
            if to_file:
                figures["rows"][name]["file_mb"] = round((scratch / "replay.jsonl").stat().st_size / 2**20)
                (scratch / "replay.jsonl").unlink()
            log(f"  replay {name}: {figures['rows'][name]}")
        scratch.rmdir()
    rate = {name: row["candles_per_s"] for name, row in figures["rows"].items() if name != "compute"}
    share = rate["universe_processes"] / compute_rate
    figures["goals"] = {"universe_processes_vs_compute": round(share, 2), "universe_vs_compute_ok": share >= GOAL_SHARE,
                        **{f"{name}_vs_compute": round(r / compute_rate, 2) for name, r in rate.items()
                           if name != "universe_processes"},
                        "universe_vs_compute_median": round(rate["universe"] * compute["cpu_us_per_candle_median"] / 1e6, 2)}
    return figures


def report(figures: dict[str, Any]) -> str:
    rows = figures["rows"]
    compute_rate = 1e6 / rows["compute"]["cpu_us_per_candle"]
    median_rate = 1e6 / rows["compute"]["cpu_us_per_candle_median"]
    lines = [f"replay speed, model {figures['model']} (candles/s; compute = the batch step in-process, CPU time "
             f"of its best round; median: of its typical one)",
             f"{'what':<60} {'candles':>8} {'candles/s':>10} {'vs compute':>11} {'vs median':>10}"]
    w = figures["workers"]
    for name, label in (("universe", f"replay: {figures['symbols']:,}-symbol universe, CandleBatch, 1 process"),
                        ("universe_to_file", "  the same, every record to a JSON-lines file (--out)"),
                        ("universe_processes", f"  the universe on {w} processes (candleflow replay's default)"),
                        ("universe_to_file_processes", f"  the same, to a JSON-lines file, {w} processes"),
                        ("files", "replay: the real files, one candle per message, 1 process")):
        r = rows[name]
        lines.append(f"{label:<60} {r['candles']:>8} {r['candles_per_s']:>10,} {r['candles_per_s'] / compute_rate:>10.2f}x"
                     f" {r['candles_per_s'] / median_rate:>9.2f}x")
    lines.append(f"{'compute row (f), best round':<60} {rows['compute']['symbols']:>8} {compute_rate:>10,.0f} {1.0:>10.2f}x")
    lines.append(f"{'compute row (f), median round':<60} {rows['compute']['symbols']:>8} {median_rate:>10,.0f} "
                 f"{median_rate / compute_rate:>10.2f}x {1.0:>9.2f}x")
    ok = figures["goals"]["universe_vs_compute_ok"]
    lines.append(f"goal: universe replay as candleflow replay runs it ({w} processes) >= {GOAL_SHARE:.0%} of compute: "
                 f"{'met' if ok else 'MISSED'} (1 process: {figures['goals']['universe_vs_compute']:.2f}x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="also print every figure as one JSON object, last line")
    parser.add_argument("--symbols", type=int, default=2000, help="symbols of the universe topic (default 2,000)")
    parser.add_argument("--steps", type=int, default=150, help="closes of every symbol (default 150: the first ~50 of a "
                        "series are its warm-up, computed apart from the vectorised step)")
    parser.add_argument("--model-dir", type=Path, default=None, help="model (default: the one make demo trains)")
    args = parser.parse_args(argv)
    if args.symbols < 1 or args.steps < 2:
        parser.error("--symbols must be at least 1 and --steps at least 2")
    figures = run(args.symbols, args.steps, args.model_dir)
    print(report(figures))
    if args.json:
        print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
