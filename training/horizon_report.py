"""One horizon's section of the evaluation report: classification, calibration, the baselines, the cost-aware
backtests (:mod:`training.backtest`), a threshold sweep, the per-symbol breakdown, equity curves and the verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from core.candle import TIMEFRAME_MS
from core.timestamps import format_time
from training.backtest import BASELINES, backtest, baseline_positions, equity_curve, positions
from training.dataset import Dataset
from training.holdout import fitted_mask
from training.metrics import accuracy, log_loss, roc_auc

if TYPE_CHECKING:
    from training.evaluate import EvalConfig

__all__ = ["EQUITY_POINTS", "SWEEP", "calibration", "horizon_report"]

SWEEP = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
EQUITY_POINTS = 200


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


def horizon_report(ds: Dataset, p: np.ndarray, cfg: EvalConfig,
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
        fitted = fitted_mask(sub.meta, spans or {})
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
