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
cost-aware backtest at the signal threshold (:mod:`training.backtest`) and a per-symbol breakdown.

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

import numpy as np

from models.metadata import BUNDLE_FILE, METADATA_FILE, BundleConfig, ModelMetadata, horizon_dir
from core.candle import TIMEFRAME_MS, Candle
from core.candle_files import read_candle_file
from core.errors import ConfigError
from core.timestamps import format_time, parse_time
from training.backtest import BASELINES, backtest, baseline_positions, equity_curve, positions
from training.dataset import Dataset, build_datasets
from training.metrics import accuracy, log_loss, roc_auc

__all__ = ["HOLDOUTS", "EvalConfig", "Scorer", "calibration", "common_holdout", "dumps", "evaluate_files", "evaluate_series", "load_scorer",
           "read_series"]

log = logging.getLogger(__name__)

HOLDOUTS = ("validation", "unseen", "all")
SWEEP = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
EQUITY_POINTS = 200
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


@dataclass(frozen=True)
class Scorer:
    """A loaded model as evaluation needs it: P(up) per horizon and what it was trained on."""

    path: Path
    kind: str                      # "direction" | "bundle"
    name: str
    version: str
    horizons: tuple[int, ...]
    metadata: tuple[ModelMetadata, ...]
    model: Any                     # DirectionModel | ModelBundle
    notes: tuple[str, ...] = ()

    def predict(self, X: np.ndarray, horizon: int) -> np.ndarray:
        if self.kind == "bundle":
            return self.model.score(X).prob_up[:, self.horizons.index(horizon)]
        return self.model.predict_proba(X)


def load_scorer(model_dir: str | Path) -> Scorer:
    """A DirectionModel directory (``model.json``) or a bundle (``bundle.json``); ConfigError otherwise."""
    from models.bundle import SEQUENCE_DIR, ModelBundle
    from models.direction import DirectionModel

    path = Path(model_dir).resolve()
    if (path / BUNDLE_FILE).is_file():
        bundle = ModelBundle.load(path)
        config = BundleConfig.from_json((path / BUNDLE_FILE).read_text("utf-8"))
        metadata = tuple(ModelMetadata.from_json((path / horizon_dir(h) / METADATA_FILE).read_text("utf-8"))
                         for h in config.horizons)
        notes = ()
        if (path / SEQUENCE_DIR).is_dir():
            notes = (f"{SEQUENCE_DIR}/ is not scored: evaluation feeds feature rows, the LightGBM members only",)
        return Scorer(path, "bundle", metadata[0].name, bundle.version, tuple(bundle.horizons), metadata, bundle, notes)
    if (path / METADATA_FILE).is_file():
        model = DirectionModel.load(path)
        return Scorer(path, "direction", model.name, model.version, (model.horizon,), (model.metadata,), model)
    raise ConfigError(f"{model_dir}: neither a model directory ({METADATA_FILE}) nor a bundle ({BUNDLE_FILE})")


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


def _cuts(scorer: Scorer, holdout: str) -> tuple[dict[str, int], int | None]:
    """(first evaluated open time per known symbol, the cut for unknown symbols)."""
    if holdout == "all":
        return {}, None
    key = "valid_from" if holdout == "validation" else "last"
    per_symbol: dict[str, int] = {}
    for meta in scorer.metadata:  # a bundle's horizons: the latest cut of any member wins
        for symbol, rng in meta.training_range.items():
            cut = parse_time(rng[key]) + (1 if key == "last" else 0)
            per_symbol[symbol] = max(per_symbol.get(symbol, cut), cut)
    if not per_symbol:
        return {}, None
    return per_symbol, max(per_symbol.values())


def fitted_spans(scorer: Scorer) -> dict[str, tuple[int, int]]:
    """{symbol: (first, end)} open times of the rows the model was fit on, ``[first, end)`` (end: the
    validation cut); a bundle's horizons: the widest span of any member."""
    spans: dict[str, tuple[int, int]] = {}
    for meta in scorer.metadata:
        for symbol, rng in meta.training_range.items():
            first, end = parse_time(rng["first"]), parse_time(rng["valid_from"])
            known = spans.get(symbol, (first, end))
            spans[symbol] = (min(known[0], first), max(known[1], end))
    return spans


def _fitted_mask(meta, spans: Mapping[str, tuple[int, int]]) -> np.ndarray:
    """Which rows the model was fit on (see :func:`fitted_spans`)."""
    first = np.array([spans.get(s, (0, 0))[0] for s in meta.symbol], dtype=np.int64)
    end = np.array([spans.get(s, (0, 0))[1] for s in meta.symbol], dtype=np.int64)
    return (meta.open_time >= first) & (meta.open_time < end)


def _holdout_rows(ds: Dataset, cuts: dict[str, int], default: int | None) -> np.ndarray:
    if default is None:
        return np.arange(len(ds))
    cut = np.array([cuts.get(s, default) for s in ds.meta.symbol], dtype=np.int64)
    return np.flatnonzero(ds.meta.open_time >= cut)


def _r(x: float, digits: int = 4) -> float | None:
    return round(float(x), digits) if np.isfinite(x) else None


def calibration(y: np.ndarray, p: np.ndarray, bins: int) -> dict[str, Any]:
    """Reliability bins of equal width on [0, 1] and the expected calibration error (ECE).

    >>> c = calibration(np.array([0, 1, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), bins=2)
    >>> [(b["n"], b["mean_p"], b["observed"]) for b in c["bins"]], c["ece"]
    ([(2, 0.15, 0.5), (2, 0.85, 1.0)], 0.25)
    """
    index = np.minimum((p * bins).astype(int), bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        mean_p, observed = float(p[mask].mean()), float(y[mask].mean())
        ece += mask.sum() / len(p) * abs(mean_p - observed)
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": int(mask.sum()), "mean_p": _r(mean_p),
                    "observed": _r(observed)})
    return {"bins": out, "ece": _r(ece)}


def _classification(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    return {"accuracy": _r(accuracy(y, p)), "auc": _r(roc_auc(y, p)), "log_loss": _r(log_loss(y, p)),
            "brier": _r(float(np.mean((p - y) ** 2))), "positive_rate": _r(float(np.mean(y))),
            "predicted_up_rate": _r(float(np.mean(p >= 0.5)))}


def _classification_baselines(y: np.ndarray, last_return: np.ndarray) -> dict[str, Any]:
    base = float(np.mean(y))
    last_up = ~(np.nan_to_num(last_return, nan=0.0) < 0)
    return {
        "always_up": {"accuracy": _r(base)},
        "last_return_sign": {"accuracy": _r(float(np.mean(last_up == (y == 1))))},
        # the base rate as a constant probability: what a model with no information scores
        "no_skill": {"accuracy": _r(max(base, 1 - base)), "auc": 0.5, "log_loss": _r(log_loss(y, np.full(len(y), base))),
                     "brier": _r(base * (1 - base))},
    }


def _verdict(cls: dict, base: dict, bt: dict) -> dict[str, Any]:
    """Which baselines the model beats, each as a boolean, plus one readable line per comparison."""
    checks: dict[str, bool] = {}
    acc = cls["accuracy"]
    for name in ("always_up", "last_return_sign", "no_skill"):
        checks[f"accuracy_beats_{name}"] = acc is not None and acc > base[name]["accuracy"]
    checks["log_loss_beats_no_skill"] = cls["log_loss"] is not None and cls["log_loss"] < base["no_skill"]["log_loss"]
    model_ret = bt["model"]["avg_return_bps"]
    for name in BASELINES:
        other = bt[name]["avg_return_bps"]
        checks[f"return_beats_{name}"] = model_ret is not None and (other is None or model_ret > other)
    checks["profitable_after_costs"] = model_ret is not None and model_ret > 0
    lines = [f"{name.replace('_', ' ')}: {'yes' if ok else 'NO'}" for name, ok in checks.items()]
    return {**checks, "lines": lines}


def _backtests(y_p: np.ndarray, meta, h: int, timeframe: str, cfg: EvalConfig) -> dict[str, Any]:
    pos = positions(y_p, cfg.threshold)
    args = dict(cost_bps=cfg.cost_bps, timeframe=timeframe, horizon=h)
    out = {"model": backtest(pos, meta.future_return, meta.open_time, meta.symbol, **args)}
    for name in BASELINES:
        bpos = baseline_positions(name, pos, meta.last_return, meta.symbol, cfg.seed)
        out[name] = backtest(bpos, meta.future_return, meta.open_time, meta.symbol, **args)
    return out


def _horizon_report(ds: Dataset, p: np.ndarray, cfg: EvalConfig,
                    spans: Mapping[str, tuple[int, int]] | None = None) -> dict[str, Any]:
    y, meta, h = ds.y, ds.meta, ds.horizon
    timeframes = sorted(set(meta.timeframe.tolist()), key=TIMEFRAME_MS.__getitem__)
    timeframe = timeframes[0]  # Sharpe is annualised by the shortest timeframe when files mix them
    cls = _classification(y, p)
    base = _classification_baselines(y, meta.last_return)
    bt = _backtests(p, meta, h, timeframe, cfg)
    sweep = []
    for t in sorted(set(SWEEP) | {cfg.threshold}):
        r = backtest(positions(p, t), meta.future_return, meta.open_time, meta.symbol, cost_bps=cfg.cost_bps,
                     timeframe=timeframe, horizon=h)
        sweep.append({"threshold": t, **{k: r[k] for k in ("trades", "hit_rate", "avg_return_bps", "sharpe")}})
    per_symbol = {}
    for symbol in dict.fromkeys(meta.symbol.tolist()):
        idx = np.flatnonzero(meta.symbol == symbol)
        sub = ds.take(idx)
        sbt = _backtests(p[idx], sub.meta, h, timeframe, cfg)
        fitted = _fitted_mask(sub.meta, spans or {})
        per_symbol[symbol] = {
            "rows": int(len(idx)),
            "from": format_time(int(sub.meta.open_time.min())), "to": format_time(int(sub.meta.open_time.max())),
            # Rows the model was fit on score better than it will live: counted apart, and the unseen
            # rows' own figures given where both kinds are in the report.
            "trained_rows": int(fitted.sum()), "unseen_rows": int((~fitted).sum()),
            "classification": _classification(sub.y, p[idx]),
            "baselines": _classification_baselines(sub.y, sub.meta.last_return),
            "backtest": sbt,
        }
        if fitted.any() and (~fitted).sum() >= 2 and len(set(sub.y[~fitted].tolist())) == 2:
            per_symbol[symbol]["unseen"] = {"rows": int((~fitted).sum()),
                                            "classification": _classification(sub.y[~fitted], p[idx][~fitted])}
    return {"rows": int(len(y)), "classification": cls, "calibration": calibration(y, p, cfg.bins),
            "baselines": base, "backtest": bt, "threshold_sweep": sweep, "per_symbol": per_symbol,
            "equity": _equity(p, meta, cfg), "verdict": _verdict(cls, base, bt)}


def _equity(p: np.ndarray, meta, cfg: EvalConfig, points: int = EQUITY_POINTS) -> dict[str, list]:
    """Cumulative net log return of the model and each baseline, thinned to ``points`` for charts."""
    pos = positions(p, cfg.threshold)
    curves = {"model": pos} | {n: baseline_positions(n, pos, meta.last_return, meta.symbol, cfg.seed) for n in BASELINES}
    out: dict[str, list] = {}
    for name, ps in curves.items():
        times, curve = equity_curve(ps, meta.future_return, meta.open_time, cfg.cost_bps)
        keep = np.unique(np.linspace(0, len(times) - 1, min(points, len(times))).astype(int))
        out.setdefault("time", times[keep].tolist())
        out[name] = [round(float(v), 6) for v in curve[keep]]
    return out


def evaluate_series(scorer: Scorer, series: Sequence[Sequence[Candle]], config: EvalConfig = EvalConfig(),
                    sources: Sequence[str] = (), since: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The evaluation report (a JSON-ready dict) of ``scorer`` on candle series.

    ``since`` ({symbol: open time ms}) moves the start of the evaluation period later (never earlier), e.g. to
    compare two models on rows neither was fit on (:func:`common_holdout`).
    """
    datasets = build_datasets(series, scorer.horizons, config.dead_zone)
    cuts, default_cut = _cuts(scorer, config.holdout)
    if config.unseen_symbols == "all" and default_cut is not None:
        default_cut = 0
    if since:
        floor = default_cut or 0
        cuts = {s: max(cuts.get(s, floor), since.get(s, 0)) for s in set(cuts) | set(since)}
        default_cut = max([floor, *since.values()])
    notes = list(scorer.notes)
    if config.holdout != "all" and default_cut is None:
        notes.append("the model's metadata has no training_range: every row was evaluated (may be in-sample)")
    spans = fitted_spans(scorer)
    unknown = sorted({str(s) for s in datasets[scorer.horizons[0]].meta.symbol} - set(cuts))
    if unknown and default_cut is not None:
        notes.append(f"symbols not in training ({', '.join(unknown)}) are evaluated from {format_time(default_cut)}"
                     + (" (every row: unseen_symbols 'all')" if config.unseen_symbols == "all" else ""))
    if any(h > 1 for h in scorer.horizons):
        notes.append("horizons > 1: consecutive trades overlap; Sharpe is annualised by sqrt(periods/horizon)")
    horizons: dict[str, Any] = {}
    for h in scorer.horizons:
        ds = datasets[h]
        ds = ds.take(_holdout_rows(ds, cuts, default_cut))
        if len(ds) < 2 or len(set(ds.y.tolist())) < 2:
            raise ConfigError(f"horizon {h}: {len(ds)} rows to evaluate after the training range "
                              f"(holdout {config.holdout!r}); give later candles or --holdout all")
        horizons[str(h)] = _horizon_report(ds, scorer.predict(ds.X, h), config, spans)
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
                  "horizons": list(scorer.horizons), "training_range": scorer.metadata[0].training_range,
                  "training_metrics": scorer.metadata[0].metrics},
        "data": {"sources": [str(s) for s in sources], "holdout": config.holdout,
                 "symbols": {s: {k: v[k] for k in ("rows", "from", "to")} for s, v in first["per_symbol"].items()}},
        "config": asdict(config),
        "horizons": horizons,
        "notes": notes,
    }


def common_holdout(*scorers: Scorer, holdout: str = "validation") -> dict[str, int]:
    """{symbol: first open time} that is in the evaluation period of every scorer: the same rows for all."""
    out: dict[str, int] = {}
    for scorer in scorers:
        cuts, default = _cuts(scorer, holdout)
        for symbol, cut in cuts.items():
            out[symbol] = max(out.get(symbol, 0), cut)
    return out


def evaluate_files(model_dir: str | Path, files: Sequence[str | Path], config: EvalConfig = EvalConfig()
                   ) -> dict[str, Any]:
    """:func:`evaluate_series` on candle files (the format of ``data/candles/``)."""
    return evaluate_series(load_scorer(model_dir), read_series(files), config, [str(Path(f)) for f in files])


def dumps(report: dict[str, Any]) -> str:
    """One line of JSON (no NaN: undefined figures are null)."""
    return json.dumps(report, separators=(",", ":"), allow_nan=False, default=str)
