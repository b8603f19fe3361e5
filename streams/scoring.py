"""From candles to predictions and signals: the candle agent's work as pure functions.

No Faust and no I/O here, so tests (and the replay and training code) can call it directly.
A batch of candles is scored with one call per model; each symbol's feature state is updated in
arrival order, so a batch gives exactly what the same candles one by one would.

A model is a :class:`models.base.ServableModel`, the one contract: ``score(X, windows, given)`` gives
every horizon with an agreement-based confidence, whether it is a bundle (:class:`models.bundle.ModelBundle`)
or a single-horizon model served as a one-member ensemble (:class:`models.direction.DirectionModel`).
With a candidate model and a traffic share, each symbol is served by one of the two by a stable hash of
the symbol (A/B).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, MutableMapping, NamedTuple, Sequence

import numpy as np

from core.signals import decide, prediction_id, signal_id
from core.candle import Candle
from core.errors import InvalidInput
from features import FEATURE_NAMES, FeatureState
from features.window import WINDOW  # feature vectors a sequence model reads
from models.base import ScoreOutput, ServableModel
from streams.online_member import OnlinePart, join_rows
from core.series_keys import series_key as state_key  # one home for the key of a series

__all__ = ["ModelOutput", "ScoredBatch", "Scorable", "model_outputs", "SequenceStates", "needs_windows", "score_candles", "score_rows",
           "state_key", "serving_version", "step_members", "WINDOW"]


def serving_version(symbol: str, active: ServableModel, candidate: ServableModel | None, share: float) -> ServableModel:
    """The model that serves ``symbol``: the candidate for a stable ``share`` of symbols, else the active one."""
    if candidate is None or share <= 0.0:
        return active
    from learning.promotion import assign_version

    return candidate if assign_version(symbol, active.version, candidate.version, share) == candidate.version else active


@dataclass
class ScoredBatch:
    """What one batch produced: predictions and signals (Avro records), rejected inputs by their index."""

    predictions: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, InvalidInput]] = field(default_factory=list)
    # index in the input of the candle behind each prediction / signal (to route outputs to their source event)
    sources: list[int] = field(default_factory=list)
    signal_sources: list[int] = field(default_factory=list)


Scorable = tuple[int, Candle, "int | None", bool, np.ndarray, "np.ndarray | None", Any]


def needs_windows(model: ServableModel) -> bool:
    """True if a member of ``model`` reads windows of feature vectors (a sequence model)."""
    return model.reads_windows


def step_members(model: ServableModel) -> tuple[Any, ...]:
    """The members of ``model`` that keep a recurrent state per series (a sequence model in step mode)."""
    return model.step_members


@dataclass(frozen=True)
class SequenceStates:
    """Where :func:`score_rows` finds and keeps the step members' state of each series: a
    :class:`~streams.sequence_book.SequenceBook` (a series book's ``sequences``), and the model versions
    whose states are worth keeping (those of the models serving now; any other is dropped from the series
    it scores)."""

    book: Any
    keep: frozenset[str] = frozenset()


def _window(state: FeatureState) -> np.ndarray:
    """The last WINDOW feature vectors, NaN rows in front while fewer exist (the sequence model's padding)."""
    out = np.full((WINDOW, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    recent = state.window(WINDOW)
    if len(recent):
        out[-len(recent):] = recent
    return out


def _step(member: Any, rows: Sequence[Scorable], sequences: SequenceStates) -> tuple[np.ndarray, float]:
    """A step member's P(up) for ``rows`` (and the seconds it took): each series' candles of the batch in
    one scan, in order (series with as many candles in one call), each series' state read from and written
    back to the book, as many series at a time as the model takes in one call (``series_per_call``): the
    states in flight are the size of one call's, not of the batch's (2,000 series' states and their new ones
    were ~40 MB a step, which the heap kept)."""
    started = time.perf_counter()
    p = np.empty((len(rows), len(member.horizons)))
    of_series: dict[str, list[int]] = {}
    for j, a in enumerate(rows):
        of_series.setdefault(state_key(a[1].symbol, a[1].timeframe), []).append(j)
    by_length: dict[int, list[str]] = {}
    for key, at in of_series.items():
        by_length.setdefault(len(at), []).append(key)
    per_call = getattr(member.model, "series_per_call", None) or len(of_series)
    for length, all_keys in by_length.items():
        for start in range(0, len(all_keys), per_call):
            _step_series(member, rows, sequences, all_keys[start:start + per_call], of_series, length, p)
    return p, time.perf_counter() - started


def _step_series(member: Any, rows: Sequence[Scorable], sequences: SequenceStates, keys: list[str],
                 of_series: dict[str, list[int]], length: int, p: np.ndarray) -> None:
    """:func:`_step` for ``keys``, series with ``length`` candles each in ``rows``: writes their P(up) into ``p``."""
    states = sequences.book.states_of(keys, member.model, [length] * len(keys))
    at = [of_series[key] for key in keys]  # (series, length): rows of ``rows``, oldest first
    if length == 1:
        first = [a[0] for a in at]
        p[first], new = member.run(np.vstack([rows[j][4] for j in first]), None, states)
    else:
        q, new = member.scan(np.stack([np.vstack([rows[j][4] for j in a]) for a in at]), states)
        p[np.array(at)] = q
    sequences.book.set_states(keys, member.model.version, new, sequences.keep)


def _run(model: ServableModel, features: np.ndarray, windows: np.ndarray | None, given: dict | None = None
         ) -> tuple[np.ndarray, np.ndarray, list[list[dict]], dict[str, str], ScoreOutput]:
    """(P(up) at the model's horizon, confidence, every horizon per row, member versions, the whole output);
    ``given``: members' outputs computed by the caller (:func:`_step`)."""
    out = model.score(features, windows, given)
    column = out.column(model.horizon)
    # Python floats first: indexing numpy per element costs ~10x a list's.
    horizons = [int(h) for h in out.horizons]
    per_row = [[{"horizon": h, "prob_up": q, "direction": "UP" if q >= 0.5 else "DOWN", "confidence": c}
                for h, q, c in zip(horizons, qs, cs)]
               for qs, cs in zip(out.prob_up.tolist(), out.confidence.tolist())]
    return out.prob_up[:, column], out.confidence[:, column], per_row, dict(out.versions), out


def score_candles(
    candles: Iterable[tuple[Candle, int | None]],
    states: MutableMapping[str, FeatureState],
    model: ServableModel,
    threshold: float,
    candidate: ServableModel | None = None,
    candidate_share: float = 0.0,
) -> ScoredBatch:
    """Update each candle's feature state, score the updated rows (one call per model), decide signals.

    ``candles`` yields (candle, produced_at_ms); ``states`` maps :func:`state_key` to the symbol's
    state and is updated in place (a missing key starts a fresh state). A candle that its state
    refuses (duplicate or older than the last one) is listed in ``rejected`` and changes nothing.

    The River online member joins in the batch step (:mod:`streams.online_member`), which has the learners.
    """
    batch = ScoredBatch()
    accepted: list[Scorable] = []
    for index, (candle, produced_at) in enumerate(candles):
        key = state_key(candle.symbol, candle.timeframe)
        state = states.get(key)
        if state is None:
            state = states[key] = FeatureState()
        try:
            row = np.array(state.update(candle), dtype=np.float64)
        except InvalidInput as exc:
            batch.rejected.append((index, exc))
            continue
        serving = serving_version(candle.symbol, model, candidate, candidate_share)
        # No book of recurrent states here: a step member steps through the window instead (same result).
        window = _window(state) if needs_windows(serving) or step_members(serving) else None
        accepted.append((index, candle, produced_at, state.ready, row, window, serving))
    return score_rows(accepted, threshold, batch=batch)


class ModelOutput(NamedTuple):
    """One row's output of its serving model."""

    p_up: float  # at the model's main horizon
    confidence: float
    horizons: list[dict]  # every horizon's P(up), direction, confidence
    versions: dict[str, str]  # member name -> version
    output: ScoreOutput  # the whole batch's, and this row's place in it: what a member joining later
    row: int  # is combined with (streams/online_member.py)


def model_outputs(accepted: Sequence[Scorable], sequences: SequenceStates | None = None,
                  timings: list[tuple[Any, int, float]] | None = None) -> dict[int, ModelOutput]:
    """Each row's serving-model output by its index, with one call per serving model (see :func:`score_rows`).
    The batch models read nothing but the row (and the step members their series' state), so rows may be
    scored together however the records are cut later. ``timings`` receives (model, rows, seconds) per
    serving model: its steady cost here, steps and records included, without the time its step members
    spent warming states up (series new to it, states catching up: the book's ``warm_up_seconds``;
    streams/serving_chain.py)."""
    results: dict[int, ModelOutput] = {}
    book = sequences.book if sequences is not None else None
    for serving in {id(a[6]): a[6] for a in accepted}.values():  # one call per model
        started = time.perf_counter()
        warm_up = getattr(book, "warm_up_seconds", 0.0)
        mine = [a for a in accepted if a[6] is serving]
        features = np.vstack([a[4] for a in mine])
        steps = step_members(serving) if sequences is not None else ()
        windows = np.stack([a[5] for a in mine]) if mine[0][5] is not None and not steps else None
        given = {m.name: _step(m, mine, sequences) for m in steps} if steps else None
        p, confidence, per_row, versions, out = _run(serving, features, windows, given)
        for j, (a, q, c, h) in enumerate(zip(mine, p.tolist(), confidence.tolist(), per_row)):
            results[a[0]] = ModelOutput(q, c, h, versions, out, j)
        if timings is not None:
            spent = time.perf_counter() - started - (getattr(book, "warm_up_seconds", 0.0) - warm_up)
            timings.append((serving, len(mine), spent))
    return results


def score_rows(
    accepted: Sequence[Scorable],
    threshold: float,
    members: Mapping[int, OnlinePart] | None = None,
    batch: ScoredBatch | None = None,
    thresholds: Mapping[int, float] | None = None,
    sequences: SequenceStates | None = None,
    outputs: Mapping[int, ModelOutput] | None = None,
) -> ScoredBatch:
    """Score rows whose features are computed (one call per serving model) and build the records.

    ``accepted``: (index, candle, produced_at, ready, feature row, window or None, serving model) in
    arrival order; ``members``: index -> the online member's part in that row's main horizon, where it
    joins the model's members (:func:`streams.online_member.join_rows`), appended to ``batch`` when given; ``thresholds``: index -> the
    signal threshold of that row where it is not ``threshold`` (learning/threshold.py); ``sequences``:
    the recurrent states of step members (:class:`SequenceStates`), advanced one candle per row (a
    series with several candles here goes through one call per candle of it, in order); ``outputs``:
    the serving models' outputs for these rows, from :func:`model_outputs` on a larger set of rows (the
    batch step scores a whole batch in one call per model, then builds its records run by run).
    """
    batch = batch if batch is not None else ScoredBatch()
    if not accepted:
        return batch
    results = outputs if outputs is not None else model_outputs(accepted, sequences)
    joined = join_rows(accepted, results, members) if members else {}

    for index, candle, produced_at, ready, row, _, serving in (a[:7] for a in accepted):
        p_up, confidence, horizons, versions = results[index][:4]  # ModelOutput
        if index in joined:
            p_up, confidence = joined[index]
            versions = {**versions, "river": members[index].version}
        row_threshold = thresholds.get(index, threshold) if thresholds else threshold
        direction, _, _ = decide(p_up, row_threshold)
        pid = prediction_id(candle.symbol, candle.timeframe, candle.open_time, serving.version)
        batch.predictions.append({
            "id": pid, "symbol": candle.symbol, "timeframe": candle.timeframe, "open_time": candle.open_time,
            "close": candle.close, "horizon": serving.horizon, "prob_up": p_up, "direction": direction,
            "confidence": confidence, "ready": ready, "model_version": serving.version,
            "features": row.tolist(), "candle_produced_at": produced_at,
            "horizons": horizons, "model_versions": versions,
        })
        batch.sources.append(index)
        # Warm-up rows are scored (every valid candle gets a prediction) but never traded on.
        if confidence >= row_threshold and ready:
            batch.signals.append({
                "id": signal_id(candle.symbol, candle.timeframe, candle.open_time, serving.version),
                "prediction_id": pid, "symbol": candle.symbol, "timeframe": candle.timeframe,
                "open_time": candle.open_time, "direction": direction, "confidence": confidence,
                "entry_price": candle.close, "horizon": serving.horizon, "model_version": serving.version,
                "candle_produced_at": produced_at,
            })
            batch.signal_sources.append(index)
    return batch
