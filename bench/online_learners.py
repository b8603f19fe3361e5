"""Measure online model kinds on real candles: test-then-train accuracy and µs per sample (docs/learning.md).

Run: ``python -m bench.online_learners [--limit N] [--kinds logreg,arf] FILE...``. Each file is replayed through
the feature engine; every row with a known, non-tied next-candle return is predicted first, then learned
(prequential evaluation, the accuracy an online model really has). Time covers predict + learn.
"""

from __future__ import annotations

import argparse
import time

from learning.online import KINDS, OnlineModel
from core.candle_files import read_candle_file
from training.dataset import series_rows

__all__ = ["prequential"]


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--limit", type=int, default=None, help="rows per file")
    args = ap.parse_args()
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
