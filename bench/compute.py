"""The ``compute`` row of ``bench pipeline``: the candle agent's batch step in-process, no Kafka.

2,000 symbols replaying real series (``bench.inference._symbols``) are warmed up a candle per symbol
per batch, then batches of one closing candle per symbol go through :func:`streams.step.process_batch`
with the outcome loop on, as the worker runs it. Reported: CPU microseconds per candle (process time,
the best of a few rounds: the machine is shared) and the share of the step spent in each part.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["compute_row"]

SYMBOLS = 2000
ROUNDS = 5


def compute_row(model_dir: Path, symbols: int = SYMBOLS, rounds: int = ROUNDS) -> dict[str, Any]:
    from bench.inference import _symbols
    from learning.learner import OutcomeLearner
    from models.loading import load_model
    from streams.candle import timeframe_ms
    from streams.series import Position
    from streams.series_book import SeriesBook
    from streams.step import Models, StepConfig, process_batch

    model = load_model(model_dir)
    warm, closing = _symbols(symbols)
    book, learner = SeriesBook(), ("partition-0", OutcomeLearner({}))
    config = StepConfig(threshold=0.3, outcome_loop=True)
    by_round: dict[int, list] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    for c in warm:
        by_round[seen[c.symbol]].append(c)
        seen[c.symbol] += 1
    offset = 0
    for k in sorted(by_round):
        process_batch([(c, None, Position("candles", 0, offset)) for c in by_round[k]], book, Models(model), config,
                      lambda i: learner)
        offset += 1
    step_ms = timeframe_ms(closing[0].timeframe)
    best = float("inf")
    result = None
    for r in range(rounds):  # each round closes one more candle per symbol
        batch = [(dataclasses.replace(c, open_time=c.open_time + r * step_ms), None, Position("candles", 0, offset + r))
                 for c in closing]
        t0 = time.process_time()
        result = process_batch(batch, book, Models(model), config, lambda i: learner)
        best = min(best, time.process_time() - t0)
    assert result is not None and len(result.predictions) == symbols
    return {"row": "compute", "label": "(f) the batch step in-process, no Kafka", "complete": True,
            "symbols": symbols, "cpu_us_per_candle": round(best / symbols * 1e6, 1),
            "outcomes_per_candle": round(len(result.outcomes) / symbols, 2),
            "model": getattr(model, "version", None)}
