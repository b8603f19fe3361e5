"""One retrain, judged: train the kind of model that serves on the latest window, evaluate the candidate and
the active version on the *same* rows (those neither was fit on, :func:`training.holdout.common_holdout`),
then on walk-forward folds (:mod:`training.walk_forward`), and decide whether it is at least as good on the
configured metric (``tolerance`` allowed). Registers nothing: the retrain worker does, the demo only reports.

>>> decide({"1": {"classification": {"accuracy": 0.55}}}, {"1": {"classification": {"accuracy": 0.56}}},
...        metric="accuracy", tolerance=0.0)
(False, 'accuracy 0.5500 vs active 0.5600 (tolerance 0.0): worse')
>>> decide({"1": {"classification": {"log_loss": 0.68}}}, {"1": {"classification": {"log_loss": 0.69}}},
...        metric="log_loss", tolerance=0.0)[0]
True
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.candle import Candle
from core.errors import ConfigError
from core.settings_sections import RETRAIN_METRICS
from training.evaluate import EvalConfig, evaluate_series
from training.holdout import common_holdout
from training.scorer import load_scorer
from training.walk_forward import walk_forward

if TYPE_CHECKING:
    from core.settings_sections import RetrainConfig

__all__ = ["METRICS", "RetrainTrial", "decide", "retrain_and_compare", "sequence_config"]

METRICS = RETRAIN_METRICS  # +1: higher is better (declared with the config that names one)


def decide(candidate: Mapping[str, Any], active: Mapping[str, Any], metric: str, tolerance: float) -> tuple[bool, str]:
    """(at least as good?, the reason with both numbers), on the mean of ``metric`` over the shared horizons."""
    horizons = sorted(set(candidate) & set(active))
    if not horizons:
        return False, "no horizon in common with the active version"
    values = []
    for report in (candidate, active):
        xs = [report[h]["classification"][metric] for h in horizons]
        values.append(None if any(x is None for x in xs) else sum(xs) / len(xs))
    cand, act = values
    if cand is None or act is None:
        return False, f"{metric} undefined on the holdout"
    ok = METRICS[metric] * (cand - act) >= -tolerance
    return ok, f"{metric} {cand:.4f} vs active {act:.4f} (tolerance {tolerance}): {'at least as good' if ok else 'worse'}"


@dataclass(frozen=True)
class RetrainTrial:
    """A model trained on ``trained_on`` in ``out_dir``, judged against the active one on the same rows."""

    version: str
    out_dir: Path
    decision: str  # "candidate" (at least as good), "rejected", or "unchanged" (identical to the active)
    reason: str
    trained_on: dict[str, Any]
    candidate: dict[str, Any] | None  # evaluation reports (training.evaluate), None when not comparable
    active: dict[str, Any] | None
    walk_forward: dict[str, Any] | None = None  # training.walk_forward.WalkForward.to_dict()


def sequence_config(active_scorer: Any) -> Any:
    """The architecture (``MambaConfig``) of the active bundle's sequence member, which a retrain trains
    again on the new data; None when the active model has none."""
    if active_scorer is None or active_scorer.kind != "bundle":
        return None
    from models.bundle import SEQUENCE_DIR
    from models.mamba.metadata import METADATA_FILE, MambaMetadata

    meta = Path(active_scorer.path) / SEQUENCE_DIR / METADATA_FILE
    if not meta.is_file():
        return None
    from models.mamba.classifier import MambaConfig

    return MambaConfig.from_dict(MambaMetadata.from_json(meta.read_text("utf-8")).config)


def retrain_and_compare(series: Sequence[Sequence[Candle]], active_scorer: Any, out_dir: Path,
                        config: RetrainConfig) -> RetrainTrial:
    """Train the kind of model ``active_scorer`` is (a bundle with its horizons, or one horizon; horizon 1
    without one) on ``series``, and compare both on the rows neither was fit on (:func:`common_holdout`).
    Blocking: run it in a thread. Registers nothing (the worker does, the demo only reports)."""
    from training.train import train_horizons_on_series, train_on_series

    horizons = active_scorer.horizons if active_scorer else (1,)
    opts = dict(progress=sys.stderr.isatty(),  # tqdm bars on a terminal, log lines only in a service
                valid_fraction=config.valid_fraction, num_boost_round=config.num_boost_round)
    sequence = sequence_config(active_scorer)

    def train(data: Sequence[Sequence[Candle]], where: Path) -> None:
        if active_scorer is not None and active_scorer.kind == "bundle":
            train_horizons_on_series(data, where, horizons, **opts)
            if sequence is not None:
                from models.bundle import SEQUENCE_DIR
                from training.mamba import train_mamba_on_series

                train_mamba_on_series(data, where / SEQUENCE_DIR, progress=opts["progress"], config=sequence,
                                      epochs=config.mamba_epochs)
        else:
            train_on_series(data, where, horizons[0], **opts)

    # Every member the active bundle has, here and in each walk-forward fold: the comparisons score every
    # member of both models (the sequence member on the stream's windows, training.scorer).
    train(series, out_dir)
    candidate = load_scorer(out_dir)
    trained_on = {"series": len(series), "candles": sum(map(len, series)),
                  "from": min(s[0].open_time for s in series), "to": max(s[-1].open_time for s in series)}
    if active_scorer is not None and candidate.version == active_scorer.version:
        return RetrainTrial(candidate.version, out_dir, "unchanged", "the retrained model is identical to the active version",
                            trained_on, None, None)
    # Every row of a symbol the active model never trained on counts (a leak through correlated symbols
    # could only favour the active model); rows it or the candidate were fit on never do.
    eval_cfg = EvalConfig(threshold=config.threshold, cost_bps=config.cost_bps, unseen_symbols="all")
    since = common_holdout(*[s for s in (candidate, active_scorer) if s is not None])
    try:
        cand_report = evaluate_series(candidate, series, eval_cfg, since=since)
        active_report = evaluate_series(active_scorer, series, eval_cfg, since=since) if active_scorer else None
    except ConfigError as exc:
        return RetrainTrial(candidate.version, out_dir, "rejected", f"no common holdout to compare on: {exc}",
                            trained_on, None, None)
    folds = None
    if active_report is None:
        ok, reason = True, "no active version to compare with"
    else:
        ok, reason = decide(cand_report["horizons"], active_report["horizons"], config.metric, config.tolerance)
        if config.walk_forward_folds:
            folds = walk_forward(series, active_scorer, train, out_dir.with_name(out_dir.name + "-folds"),
                                 config.metric, config.walk_forward_folds, eval_config=eval_cfg)
            if folds.candidate is not None:  # the folds decide; the single holdout is reported with them
                ok = METRICS[config.metric] * (folds.candidate - folds.active) >= -config.tolerance
                reason = (f"walk-forward over {len(folds.scored)} folds: {config.metric} {folds.candidate:.4f} vs active "
                          f"{folds.active:.4f} (tolerance {config.tolerance}): {'at least as good' if ok else 'worse'}; "
                          f"holdout: {reason}")
    return RetrainTrial(candidate.version, out_dir, "candidate" if ok else "rejected", reason, trained_on,
                        cand_report, active_report, folds.to_dict() if folds is not None else None)
