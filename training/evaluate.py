"""Evaluate an exported model (a DirectionModel directory or a bundle) on candle files: one report dict.

Rows come from :func:`training.dataset.build_datasets`, i.e. the streaming feature engine fed one candle
at a time over the *whole* file (warm-up included), then only the rows of the evaluation period are
scored. The period (``holdout``) defaults to ``"validation"``: per symbol, rows from the model's
``training_range[symbol].valid_from`` on — the first candle the model was not fit on; the trainer purged
every training row whose label reached that far, so no evaluated label was seen in training. A symbol
the model never saw starts at the latest ``valid_from`` of any symbol (the market was seen until then).
``"unseen"`` keeps only rows after everything the trainer saw (its ``last``); ``"all"`` keeps every row
(in-sample figures, labelled so in the report).

Per horizon: classification (accuracy, AUC, log loss, Brier), calibration bins, the baselines, a
cost-aware backtest at the signal threshold (:mod:`training.backtest`) and a per-symbol breakdown
(:mod:`training.horizon_report`). The model: :mod:`training.scorer`; the rows: :mod:`training.holdout`.

>>> import pathlib, tempfile
>>> from core.candle_files import read_candle_file
>>> from training.train import BUNDLED, train_on_series
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:2000]
>>> _ = train_on_series([eth[:1500]], out, progress=False, num_boost_round=10)
>>> report = evaluate_series(load_scorer(out), [eth], EvalConfig(threshold=0.05))
>>> sorted(report["horizons"]["1"]), report["data"]["holdout"]
(['backtest', 'baselines', 'calibration', 'classification', 'equity', 'per_symbol', 'rows', 'threshold_sweep', 'verdict'], 'validation')
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.candle import Candle
from core.candle_files import read_candle_file
from core.errors import ConfigError
from core.timestamps import format_time
from training.dataset import build_datasets
from training.holdout import HOLDOUTS, fitted_spans, holdout_cuts, holdout_rows
from training.horizon_report import horizon_report
from training.scorer import Scorer, load_scorer, score_datasets

__all__ = ["EvalConfig", "dumps", "evaluate_files", "evaluate_series", "read_series"]

log = logging.getLogger(__name__)

# Below this accuracy the last return's sign is a strong contrarian signal: a sign of bid-ask bounce.
_BOUNCE_ACCURACY = 0.47


@dataclass(frozen=True)
class EvalConfig:
    """``threshold``: signal confidence |2p - 1| (the stream's ``CANDLEFLOW_SIGNAL_THRESHOLD``);
    ``cost_bps``: per trade, entry and exit together; ``dead_zone``: None keeps flat futures (the stream
    sees them too; they count as "not up"); ``bins``: calibration bins."""

    threshold: float = 0.3
    cost_bps: float = 10.0
    holdout: str = "validation"
    dead_zone: float | None = None
    bins: int = 10
    seed: int = 0
    # Symbols the model was not trained on: evaluated from its latest training cut ("after_training": no
    # row from a period it learned from other symbols), or on every row ("all": what a comparison with a
    # retrained model uses, where a leak through correlated symbols could only favour this model).
    unseen_symbols: str = "after_training"

    def __post_init__(self) -> None:
        if self.unseen_symbols not in ("after_training", "all"):
            raise ConfigError(f"unseen_symbols must be after_training or all, got {self.unseen_symbols!r}")
        if self.holdout not in HOLDOUTS:
            raise ConfigError(f"holdout must be one of {', '.join(HOLDOUTS)}, got {self.holdout!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be within 0..1, got {self.threshold}")
        if self.cost_bps < 0 or self.bins < 2:
            raise ConfigError("cost_bps must be >= 0 and bins >= 2")


def read_series(files: Sequence[str | Path]) -> list[list[Candle]]:
    """One candle series per file; invalid rows are left out with a warning (as training does)."""
    if not files:
        raise ConfigError("no candle files given")
    series = []
    for path in files:
        cf = read_candle_file(path)
        if cf.rejected:
            log.warning("%s: %d invalid row(s) left out", path, len(cf.rejected))
        series.append(list(cf.candles))
    return series


def evaluate_series(scorer: Scorer, series: Sequence[Sequence[Candle]], config: EvalConfig = EvalConfig(),
                    sources: Sequence[str] = (), since: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The evaluation report (a JSON-ready dict) of ``scorer`` on candle series.

    ``since`` ({symbol: open time ms}) moves the start of the evaluation period later (never earlier), e.g. to
    compare two models on rows neither was fit on (:func:`common_holdout`).
    """
    datasets = build_datasets(series, scorer.horizons, config.dead_zone)
    cuts, default_cut = holdout_cuts(scorer, config.holdout)
    if config.unseen_symbols == "all" and default_cut is not None:
        default_cut = 0
    if since:
        floor = default_cut or 0
        cuts = {s: max(cuts.get(s, floor), since.get(s, 0)) for s in set(cuts) | set(since)}
        default_cut = max([floor, *since.values()])
    notes: list[str] = []
    if config.holdout != "all" and default_cut is None:
        notes.append("the model's metadata has no training_range: every row was evaluated (may be in-sample)")
    spans = fitted_spans(scorer)
    unknown = sorted({str(s) for s in datasets[scorer.horizons[0]].meta.symbol} - set(cuts))
    if unknown and default_cut is not None:
        notes.append(f"symbols not in training ({', '.join(unknown)}) are evaluated from {format_time(default_cut)}"
                     + (" (every row: unseen_symbols 'all')" if config.unseen_symbols == "all" else ""))
    if any(h > 1 for h in scorer.horizons):
        notes.append("horizons > 1: consecutive trades overlap; Sharpe is annualised by sqrt(periods/horizon)")
    evaluated = {}
    for h in scorer.horizons:
        ds = datasets[h].take(holdout_rows(datasets[h], cuts, default_cut))
        if len(ds) < 2 or len(set(ds.y.tolist())) < 2:
            raise ConfigError(f"horizon {h}: {len(ds)} rows to evaluate after the training range "
                              f"(holdout {config.holdout!r}); give later candles or --holdout all")
        evaluated[h] = ds
    prob_up = score_datasets(scorer, series, evaluated)
    horizons = {str(h): horizon_report(ds, prob_up[h], config, spans) for h, ds in evaluated.items()}
    first = horizons[str(scorer.horizons[0])]
    trained = {s: v["trained_rows"] for s, v in first["per_symbol"].items() if v["trained_rows"]}
    if trained:
        never = [s for s, v in first["per_symbol"].items() if not v["trained_rows"]]
        notes.append("rows the model was trained on are included for " + ", ".join(f"{s} ({n})" for s, n in trained.items())
                     + ": their figures are optimistic; per symbol, the rows it never saw are scored apart"
                     + (f"; {', '.join(never)}: never seen" if never else ""))
    reversal = first["baselines"]["last_return_sign"]["accuracy"]
    if reversal is not None and reversal < _BOUNCE_ACCURACY:
        notes.append(f"the next candle reverses the last one {1 - reversal:.0%} of the time: typical of bid-ask "
                     "bounce in close prices; the backtest fills at closes, so cost_bps must cover the spread")
    notes.append("backtest: fills at candle closes, one trade per signal, no slippage beyond cost_bps")
    return {
        "model": {"path": str(scorer.path), "kind": scorer.kind, "name": scorer.name, "version": scorer.version,
                  "horizons": list(scorer.horizons), "members": dict(getattr(scorer.model, "versions", {})),
                  "training_range": scorer.metadata[0].training_range,
                  "training_metrics": scorer.metadata[0].metrics},
        "data": {"sources": [str(s) for s in sources], "holdout": config.holdout,
                 "symbols": {s: {k: v[k] for k in ("rows", "from", "to")} for s, v in first["per_symbol"].items()}},
        "config": asdict(config),
        "horizons": horizons,
        "notes": notes,
    }


def evaluate_files(model_dir: str | Path, files: Sequence[str | Path], config: EvalConfig = EvalConfig()
                   ) -> dict[str, Any]:
    """:func:`evaluate_series` on candle files (the format of ``data/candles/``)."""
    return evaluate_series(load_scorer(model_dir), read_series(files), config, [str(Path(f)) for f in files])


def dumps(report: dict[str, Any]) -> str:
    """One line of JSON (no NaN: undefined figures are null)."""
    return json.dumps(report, separators=(",", ":"), allow_nan=False, default=str)
