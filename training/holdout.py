"""Which rows an evaluation scores: those after the rows a model was fit on (``holdout`` "validation"),
after everything it saw ("unseen"), or all; and the rows it was fit on, counted apart in the report.

The cuts come from each model's ``training_range`` (per symbol: ``first``, ``valid_from``, ``last``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.timestamps import parse_time
from training.dataset import Dataset
from training.scorer import Scorer

__all__ = ["HOLDOUTS", "common_holdout", "fitted_mask", "fitted_spans", "holdout_cuts", "holdout_rows"]

HOLDOUTS = ("validation", "unseen", "all")


def holdout_cuts(scorer: Scorer, holdout: str) -> tuple[dict[str, int], int | None]:
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


def fitted_mask(meta, spans: Mapping[str, tuple[int, int]]) -> np.ndarray:
    """Which rows the model was fit on (see :func:`fitted_spans`)."""
    first = np.array([spans.get(s, (0, 0))[0] for s in meta.symbol], dtype=np.int64)
    end = np.array([spans.get(s, (0, 0))[1] for s in meta.symbol], dtype=np.int64)
    return (meta.open_time >= first) & (meta.open_time < end)


def holdout_rows(ds: Dataset, cuts: dict[str, int], default: int | None) -> np.ndarray:
    if default is None:
        return np.arange(len(ds))
    cut = np.array([cuts.get(s, default) for s in ds.meta.symbol], dtype=np.int64)
    return np.flatnonzero(ds.meta.open_time >= cut)


def common_holdout(*scorers: Scorer, holdout: str = "validation") -> dict[str, int]:
    """{symbol: first open time} that is in the evaluation period of every scorer: the same rows for all."""
    out: dict[str, int] = {}
    for scorer in scorers:
        cuts, default = holdout_cuts(scorer, holdout)
        for symbol, cut in cuts.items():
            out[symbol] = max(out.get(symbol, 0), cut)
    return out
