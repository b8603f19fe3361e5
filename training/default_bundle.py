"""The model ``make demo`` and ``candleflow train`` ship: LightGBM per horizon and the Mamba sequence member,
combined with a weight chosen on rows neither member was fit on.

1. :func:`training.train.train_horizons_on_series` fits the LightGBM set on the first 80 % of each series.
2. :func:`training.mamba.train_mamba_on_series` fits the sequence model on the first 70 % (the next 10 %
   stop its training early); its metrics come from the last 20 %.
3. The selection rows are the last 20 % of each series (after the LightGBM cut, so after everything either
   member learned from). Each candidate weight of the sequence member (LightGBM weighs 1) is scored there
   and the lightest weight within ``CHOICE_MARGIN`` of the best mean AUC over the horizons is kept; a weight of 0 keeps the member out of
   the prediction (it still runs, so a later weight change needs no retrain). The table of every candidate
   goes into ``bundle.json`` under ``selection``, and the ensemble's own metrics on those rows become the
   bundle's metrics (what live accuracy is compared with).

>>> import pathlib, tempfile
>>> from core.candle_files import read_candle_file
>>> from models.mamba.classifier import MambaConfig
>>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1300]
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> info = train_default_bundle([eth], out, horizons=(1, 2), progress=False, num_boost_round=5,
...                             mamba_config=MambaConfig(d_model=8, n_layers=1), mamba_epochs=1)
>>> sorted(p.name for p in out.iterdir())
['bundle.json', 'h1', 'h2', 'mamba', 'reference.npy']
>>> info.sequence_weight in SEQUENCE_WEIGHTS, sorted(info.selection["candidates"]) == sorted(map(str, SEQUENCE_WEIGHTS))
(True, True)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.candle import Candle
from models.bundle import SEQUENCE_DIR, SEQUENCE_MEMBER
from models.metadata import BUNDLE_FILE, LGBM_MEMBER, BundleConfig, horizon_dir
from training.dataset import BUNDLED, build_datasets
from training.holdout import holdout_cuts, holdout_rows
from training.metrics import direction_metrics, roc_auc
from training.train import HORIZONS, BundleInfo, train_horizons_on_series

__all__ = ["BUNDLED", "CHOICE_MARGIN", "DEFAULT_MAMBA_EPOCHS", "SEQUENCE_WEIGHTS", "DefaultBundleInfo", "train_default_bundle"]

log = logging.getLogger(__name__)

DEFAULT_MAMBA_EPOCHS = 8            # at most; early stopping usually ends it after 3-4 (about two minutes on 2 cores)
# Candidates for the sequence member's weight (LightGBM weighs 1). Not above 1: on pairs never trained on
# (leave-one-pair-out over the five real 5m pairs) a Mamba share over one half lowered the mean AUC, while
# the tail of the training pairs, where the choice is made, kept rewarding it (docs/mamba.md).
SEQUENCE_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
CHOICE_MARGIN = 0.001  # the lightest weight within this mean AUC of the best: a smaller share of the member
                       # that these rows favour least robustly


@dataclass(frozen=True)
class DefaultBundleInfo:
    """The LightGBM set as trained, the sequence member's training, the chosen weight and the table behind it."""

    lgbm: BundleInfo
    sequence: Any                   # training.mamba.MambaTrainInfo, None without the member
    sequence_weight: float | None
    selection: dict[str, Any]

    out_dir = property(lambda self: self.lgbm.out_dir)

    def to_dict(self) -> dict[str, Any]:
        return {**self.lgbm.to_dict(), "sequence": self.sequence.to_dict() if self.sequence else None,
                "sequence_weight": self.sequence_weight, "selection": self.selection}


def _member_probabilities(out_dir: Path, series: Sequence[Sequence[Candle]], horizons: tuple[int, ...]):
    """Each member's P(up) on the selection rows ({horizon: {member: (n,)}}), and those rows per horizon."""
    from training.scorer import load_scorer, member_probabilities

    scorer = load_scorer(out_dir)
    datasets = build_datasets(series, horizons, None)
    cuts, default = holdout_cuts(scorer, "validation")
    rows = {h: ds.take(holdout_rows(ds, cuts, default)) for h, ds in datasets.items()}
    by_member = member_probabilities(scorer, series, rows)
    return {h: {name: p[h] for name, p in by_member.items()} for h in horizons}, rows


def _choose_weight(probs, rows, horizons) -> tuple[float, dict[str, Any]]:
    table: dict[str, Any] = {}
    for w in SEQUENCE_WEIGHTS:
        aucs = {}
        for h in horizons:
            p = (probs[h][LGBM_MEMBER] + w * probs[h][SEQUENCE_MEMBER]) / (1.0 + w)
            aucs[f"h{h}"] = round(roc_auc(rows[h].y, p), 6)
        table[str(w)] = {"auc": aucs, "mean_auc": round(float(np.mean(list(aucs.values()))), 6)}
    top = max(table[str(w)]["mean_auc"] for w in SEQUENCE_WEIGHTS)
    return min(w for w in SEQUENCE_WEIGHTS if table[str(w)]["mean_auc"] >= top - CHOICE_MARGIN), table


def train_default_bundle(series: Sequence[Sequence[Candle]], out_dir: str | Path,
                         horizons: Sequence[int] = HORIZONS, *, with_sequence: bool = True,
                         mamba_epochs: int | None = None, mamba_config: Any = None, progress: bool = True,
                         **lgbm_options: Any) -> DefaultBundleInfo:
    """Train the default bundle into ``out_dir`` (``lgbm_options`` go to the LightGBM trainer). Blocking;
    the sequence member takes minutes on a CPU. ``bundle.json`` is written first without the member and
    again with its weight, so a stop half-way leaves a servable LightGBM bundle."""
    out_dir = Path(out_dir)
    horizons = tuple(horizons)
    lgbm = train_horizons_on_series(series, out_dir, horizons, progress, **lgbm_options)
    if not with_sequence:
        return DefaultBundleInfo(lgbm, None, None, {})
    from training.mamba import train_mamba_on_series

    epochs = mamba_epochs or DEFAULT_MAMBA_EPOCHS
    sequence = train_mamba_on_series(series, out_dir / SEQUENCE_DIR, progress=progress, config=mamba_config,
                                     epochs=epochs)
    if progress:
        print("choosing the sequence member's weight on the rows after both members' training data ...",
              file=sys.stderr, flush=True)
    probs, rows = _member_probabilities(out_dir, series, horizons)
    weight, table = _choose_weight(probs, rows, horizons)
    metrics = {}
    for h in horizons:
        p = (probs[h][LGBM_MEMBER] + weight * probs[h][SEQUENCE_MEMBER]) / (1.0 + weight)
        metrics[horizon_dir(h)] = direction_metrics(rows[h].y, p, rows[h].meta.last_return)
    selection = {"rows": {f"h{h}": len(rows[h]) for h in horizons}, "candidates": table, "chosen": weight,
                 "metric": "mean AUC over the horizons, rows after every member's training data"}
    config = dataclasses.replace(lgbm.config, weights={LGBM_MEMBER: 1.0, SEQUENCE_MEMBER: weight}, metrics=metrics,
                                 selection=selection)
    BundleConfig.from_json(config.to_json())
    tmp = out_dir / f".{BUNDLE_FILE}.tmp"
    tmp.write_text(config.to_json(), "utf-8")
    os.replace(tmp, out_dir / BUNDLE_FILE)
    log.info("sequence member weight %s (mean AUC %s; LightGBM alone %s)", weight, table[str(weight)]["mean_auc"],
             table["0.0"]["mean_auc"])
    return DefaultBundleInfo(dataclasses.replace(lgbm, config=config), sequence, weight, selection)
