"""Walk-forward comparison: a retrained model against the serving one, fold by fold, on the most recent data.

Rolling origin, purged: the last ``test_fraction`` of the candle time is cut into ``folds`` consecutive
blocks. For each block a candidate is trained on the candles before it, minus a purge gap of
``purge`` candles (a training row's label looks that far ahead: without the gap it would see the
block), and both the candidate and the serving model are scored on the *same* rows of the block: those
neither was fit on (:func:`training.holdout.common_holdout` and the block's start). The verdict is the
row-weighted mean of ``metric`` over the folds, with each fold listed; a fold too short to score is
reported and left out.

One split can be lucky; folds show whether a retrain is better at every recent origin or only once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.candle import Candle
from core.errors import ConfigError
from training.evaluate import EvalConfig, evaluate_series
from training.holdout import common_holdout
from training.scorer import load_scorer

__all__ = ["Fold", "WalkForward", "walk_forward"]

# Candles taken before a period that is evaluated or trained from (a block here, a request's ``since`` in
# the retrain worker): the features of its first candle are ready (features needs 34).
WARM_UP = 60


@dataclass(frozen=True)
class Fold:
    test_from: int  # candle open time, ms
    test_to: int
    rows: int
    candidate: float | None  # the metric at the first shared horizon (None: the fold could not be scored)
    active: float | None
    note: str = ""


@dataclass(frozen=True)
class WalkForward:
    metric: str
    folds: tuple[Fold, ...]
    candidate: float | None  # row-weighted over the scored folds
    active: float | None

    @property
    def scored(self) -> list[Fold]:
        return [f for f in self.folds if f.candidate is not None and f.active is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "candidate": self.candidate, "active": self.active,
                "folds": [asdict(f) for f in self.folds]}


def _cut(series: Sequence[Sequence[Candle]], start: int | None, end: int | None) -> list[list[Candle]]:
    out = [[c for c in s if (start is None or c.open_time >= start) and (end is None or c.open_time < end)]
           for s in series]
    return [s for s in out if s]


def walk_forward(series: Sequence[Sequence[Candle]], active_scorer: Any,
                 train: Callable[[Sequence[Sequence[Candle]], Path], None], work_dir: Path, metric: str = "accuracy",
                 folds: int = 3, test_fraction: float = 0.3, purge: int | None = None,
                 eval_config: EvalConfig = EvalConfig()) -> WalkForward:
    """``train(series, out_dir)`` writes a model into ``out_dir`` (the retrain's own recipe)."""
    if not 0 < test_fraction < 1 or folds < 1:
        raise ConfigError(f"walk-forward needs folds >= 1 and 0 < test_fraction < 1, got {folds}, {test_fraction}")
    times = sorted({c.open_time for s in series for c in s})
    if len(times) < 2:
        raise ConfigError("walk-forward needs candles")
    step = min(b - a for a, b in zip(times, times[1:]))
    purge = max(active_scorer.horizons) if purge is None else purge
    first, last = times[0], times[-1] + step
    test_start = last - int((last - first) * test_fraction)
    bounds = [test_start + (last - test_start) * i // folds for i in range(folds + 1)]
    out: list[Fold] = []
    for i, (start, end) in enumerate(zip(bounds, bounds[1:])):
        train_series = _cut(series, None, start - purge * step)
        test_series = _cut(series, start - WARM_UP * step, end)
        try:
            out_dir = work_dir / f"fold-{i + 1}"
            train(train_series, out_dir)
            candidate = load_scorer(out_dir)
            common = common_holdout(candidate, active_scorer)
            since = {symbol: max(common.get(symbol, start), start) for symbol in {s[0].symbol for s in test_series} | set(common)}
            h = str(sorted(set(candidate.horizons) & set(active_scorer.horizons))[0])
            cand = evaluate_series(candidate, test_series, eval_config, since=since)["horizons"][h]
            act = evaluate_series(active_scorer, test_series, eval_config, since=since)["horizons"][h]
            out.append(Fold(start, end, cand["rows"], cand["classification"][metric], act["classification"][metric]))
        except ConfigError as exc:  # too few rows to train or to score in this fold
            out.append(Fold(start, end, 0, None, None, note=str(exc)))
    scored = [f for f in out if f.candidate is not None and f.active is not None]
    rows = sum(f.rows for f in scored)
    if not rows:
        return WalkForward(metric, tuple(out), None, None)
    mean = lambda pick: round(sum(pick(f) * f.rows for f in scored) / rows, 6)  # noqa: E731
    return WalkForward(metric, tuple(out), mean(lambda f: f.candidate), mean(lambda f: f.active))
