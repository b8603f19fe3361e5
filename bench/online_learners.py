"""Measure online model kinds on real candles: test-then-train accuracy and µs per sample (docs/learning.md).

Run: ``python -m bench.online_learners [--limit N] [--kinds logreg,arf] FILE...``. Each file is replayed through
the feature engine; every row with a known, non-tied next-candle return is predicted first, then learned
(prequential evaluation, the accuracy an online model really has). Time covers predict + learn.
``--mini-batch``: instead, the cost of one ``OnlineModel.learn_many`` call (the worker's way of learning) on
mini-batches of 50 and 500 of the files' rows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from learning.online import KINDS, OnlineModel
from core.candle_files import read_candle_file
from training.dataset import series_rows

__all__ = ["mini_batch_us", "prequential"]


def prequential(path: str, kind: str, limit: int | None = None) -> tuple[int, float, float]:
    """``(rows, accuracy, µs per sample)`` of one model kind on one candle file."""
    ds = series_rows(read_candle_file(path).candles, horizon=1)
    model, right = OnlineModel(kind=kind), 0
    rows = list(zip(ds.X, ds.y))[:limit]
    start = time.perf_counter()
    for x, y in rows:
        right += model.predict_one(x) == y
        model.learn_one(x, y)
    return len(rows), right / len(rows), (time.perf_counter() - start) / len(rows) * 1e6


def mini_batch_us(paths: list[str], size: int, calls: int = 50) -> float:
    """Microseconds per ``learn_many`` call on mini-batches of ``size`` rows (a logreg model, warmed first)."""
    ds = [series_rows(read_candle_file(path).candles, horizon=1) for path in paths]
    x, y = np.vstack([d.X for d in ds]), np.concatenate([d.y for d in ds])
    model = OnlineModel()
    model.learn_many(x[:size], y[:size].tolist())
    batches = [(x[k:k + size], y[k:k + size].tolist()) for k in range(0, len(x) - size, size)][:calls]
    start = time.perf_counter()
    for rows, labels in batches:
        model.learn_many(rows, labels)
    return (time.perf_counter() - start) / len(batches) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--limit", type=int, default=None, help="rows per file")
    ap.add_argument("--mini-batch", action="store_true", help="the cost of a learn_many call instead")
    args = ap.parse_args()
    if args.mini_batch:
        for size in (50, 500):
            print(f"learn_many of {size} rows: {mini_batch_us(args.files, size):.0f} us a call", flush=True)
        return
    for kind in args.kinds.split(","):
        n_all = right_all = us_all = 0.0
        for path in args.files:
            n, acc, us = prequential(path, kind, args.limit)
            print(f"{kind:7s} {path.rsplit('/', 1)[-1]:24s} rows {n:6d} accuracy {acc:.4f} {us:8.0f} us/sample",
                  flush=True)
            n_all, right_all, us_all = n_all + n, right_all + acc * n, us_all + us * n
        print(f"{kind:7s} ALL rows {int(n_all)} accuracy {right_all / n_all:.4f} {us_all / n_all:.0f} us/sample",
              flush=True)


if __name__ == "__main__":
    main()
