"""The River online model as a member of the ensemble, deterministic however the candles were batched.

Each partition's :class:`~learning.learner.OutcomeLearner` holds an online model that learns the partition's
outcomes in mini-batches cut by candle time (streams/partition_clock.py): at a candle of time t it has
learned every outcome labelled by the partition's candles before t, so its P(up) for a candle is known only
once the step reaches the candle's run (:func:`online_parts`). Its share of the weight in that candle's main
horizon is :meth:`~learning.online.OnlineModel.member_weight` (0 until it has learned and been judged enough,
then following its recent test-then-train accuracy against the batch model's validation accuracy); it then
joins the serving model's members there (:func:`join_rows`, :func:`models.ensemble.join`): one strategy and
one confidence formula for every member, the batch model's and the online one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from models.ensemble import join

__all__ = ["OnlinePart", "online_parts", "join_rows"]


class OnlinePart(NamedTuple):
    """The online member's part in one candle's main horizon."""

    weight: float
    p_up: float
    version: str


def online_parts(rows: Sequence[tuple[int, np.ndarray, Any]], learner_of: Callable[[int], Any],
                 max_weight: float) -> dict[int, OnlinePart]:
    """The online member's part for each row of one run of a step (streams/partition_clock.py, its
    learners advanced): ``rows`` are (index, feature row, serving model); each learner scores
    its rows in one call. Rows whose member weight is 0 are left out."""
    by_learner: dict[int, tuple[Any, list[tuple[int, np.ndarray, Any]]]] = {}
    for row in rows:
        learner = learner_of(row[0])
        by_learner.setdefault(id(learner), (learner, []))[1].append(row)
    out: dict[int, OnlinePart] = {}
    for learner, mine in by_learner.values():
        online, weight_of = learner.online, {}
        for _, _, serving in mine:  # once per serving model: the weight sums the last 500 verdicts
            if id(serving) not in weight_of:
                reference = learner.training_accuracy.get(serving.version, {}).get(serving.horizon)
                weight_of[id(serving)] = online.member_weight(max_weight, reference)
        weights = [weight_of[id(serving)] for _, _, serving in mine]
        if not any(weights):
            continue
        p = online.predict_many(np.vstack([features for _, features, _ in mine])).tolist()
        out.update({index: OnlinePart(w, q, online.version) for (index, _, _), w, q in zip(mine, weights, p) if w > 0})
    return out


def join_rows(accepted: Sequence[tuple], outputs: Mapping[int, Any], members: Mapping[int, OnlinePart]
              ) -> dict[int, tuple[float, float]]:
    """Index -> (P(up), confidence) of each row of ``accepted`` (index, ..., serving model at 6) that the
    online member joins (``members``): in the main horizon, a member of the serving model's ensemble
    (:func:`models.ensemble.join`), holding its weight's share. ``outputs``: index -> the row's
    :class:`streams.scoring.ModelOutput`. One call per model output, not per row."""
    groups: dict[int, tuple[Any, Any, list[int]]] = {}
    for a in accepted:
        if a[0] in members:
            output = outputs[a[0]].output
            groups.setdefault(id(output), (output, a[6], []))[2].append(a[0])
    out: dict[int, tuple[float, float]] = {}
    for output, serving, indices in groups.values():
        parts = [members[i] for i in indices]
        p, _, confidence = join(output, np.array([outputs[i].row for i in indices]), output.column(serving.horizon),
                                {m.name: m.weight for m in serving.members},
                                np.array([b.p_up for b in parts]), np.array([b.weight for b in parts]))
        out.update(zip(indices, zip(p.tolist(), confidence.tolist())))
    return out
