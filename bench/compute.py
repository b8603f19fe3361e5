"""The ``compute`` row of ``bench pipeline``: the candle agent's batch step in-process, no Kafka.

2,000 symbols replaying real series (``bench.inference._symbols``, 60 candles each) go through
:func:`streams.step.process_batch` one candle per symbol per batch, with the outcome loop on, as the
worker runs it; the last ``ROUNDS`` batches (warm series, real next candles, so outcomes are labelled
and learned) are timed. Reported: CPU microseconds per candle (process time,
the best of a few rounds: the machine is shared; and their median).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from core.gc_policy import settle

__all__ = ["compute_row", "compute_row_apart"]

SYMBOLS = 2000
ROUNDS = 5
LABEL = "(f) the batch step in-process, no Kafka"


def compute_row(model_dir: Path, symbols: int = SYMBOLS, rounds: int = ROUNDS) -> dict[str, Any]:
    from bench.inference import _symbols
    from learning.learner import OutcomeLearner, partition_key
    from models.loading import load_model, serving_threads
    from streams.series_book import SeriesBook
    from core.settings import Settings
    from streams.step import StepConfig

    serving_threads()  # as the worker
    model = load_model(model_dir)
    warm, closing = _symbols(symbols)
    armed = OutcomeLearner()  # as a worker's: drift watches armed from the model's training profile
    if hasattr(model, "profile"):
        armed.arm(model.version, model.profile)
    book, learner = SeriesBook(), (partition_key(0), armed)
    config = StepConfig.from_settings(Settings(signal_threshold=0.3))  # a worker's defaults
    by_round: dict[int, list] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    for c in warm:
        by_round[seen[c.symbol]].append(c)
        seen[c.symbol] += 1
    by_round[max(by_round) + 1] = list(closing)
    rounds_in_order = [by_round[k] for k in sorted(by_round)]
    timed: list[float] = []
    threshold = gc.get_threshold()
    settle()  # as a worker does once loaded (core/gc_policy.py)
    try:
        result = _run_rounds(rounds_in_order, rounds, book, model, config, learner, timed)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert result is not None and len(result.predictions) == symbols
    return {"row": "compute", "label": LABEL, "complete": True,
            "symbols": symbols, "cpu_us_per_candle": round(min(timed) / symbols * 1e6, 1),
            # Rounds differ (the machine is shared; a full collection lands in some): the median says what
            # a round typically costs, beside the best one the pipeline's goals are judged by.
            "cpu_us_per_candle_median": round(statistics.median(timed) / symbols * 1e6, 1),
            "outcomes_per_candle": round(len(result.outcomes) / symbols, 2),
            "model": getattr(model, "version", None)}


def _run_rounds(rounds_in_order: list[list], rounds: int, book: Any, model: Any, config: Any, learner: Any,
                timed: list[float]) -> Any:
    from streams.series import Position
    from streams.step import Models, process_batch

    result = None
    for offset, candles in enumerate(rounds_in_order):  # the last `rounds` batches are timed: real next candles
        batch = [(c, None, Position("candles", 0, offset)) for c in candles]
        t0 = time.process_time()
        result = process_batch(batch, book, Models(model), config, lambda i: learner)
        if offset >= len(rounds_in_order) - rounds:
            timed.append(time.process_time() - t0)
    return result


def compute_row_apart(model_dir: Path, timeout_s: float = 600.0) -> dict[str, Any]:
    """:func:`compute_row` in a process of its own: CPU time is the whole process's, so in the pipeline
    bench's process the threads its Kafka rows left running were counted too (131-135 us a candle at the
    end of a full run, 85-88 alone)."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bench.compute", "--model", str(model_dir), "--json"],
                          capture_output=True, text=True, timeout=timeout_s, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        return {"row": "compute", "label": LABEL, "complete": False, "error": done.stderr.strip()[-500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    from bench._model_argument import parse_model_bench_args

    args = parse_model_bench_args(argparse.ArgumentParser(prog="bench.compute", description="The pipeline "
                                                          "bench's compute row alone."), argv)
    if args is None:
        return 2
    row = compute_row(args.model)
    print(json.dumps(row) if args.json else f"{row['label']}: {row['cpu_us_per_candle']} CPU us per candle "
          f"(median {row['cpu_us_per_candle_median']}, {row['symbols']} symbols a batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
