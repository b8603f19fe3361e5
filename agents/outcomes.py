"""The outcome loop's agent side.

- :func:`label_and_learn_batch`, called by the candle agent after each batch: the candle at t labels the
  predictions of t - h (no second trip through Kafka), the labels go to ``outcomes``, the partition's
  :class:`learning.learner.OutcomeLearner` learns from them, and a drift watch that fires publishes a
  ``retrain-requests`` event (JSON). Each prediction's features are kept in a bounded ring of slots per
  series (:func:`learning.loop.feature_slot`) for joining trade results.
- ``trades`` agent: trade results (source TRADE) arriving on ``outcomes`` from trading engines are joined
  with their prediction's features and update the same learner (accuracy per version, drift watches).

Candles, predictions and outcomes are keyed by symbol on equally partitioned topics, so a symbol's
labeller, features and learner all live on the worker that owns the symbol.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from agents.patterns import remember_patterns
from agents.table_cache import TableCache, as_current
from learning.labelling import Labeller
from learning.learner import OutcomeLearner
from learning.loop import feature_slot, label_and_learn
from schemas import AvroCodec, store_from_url
from streams.app import Pipeline
from streams.candle import timeframe_ms
from streams.errors import InvalidInput

__all__ = ["attach_outcome_agents", "label_and_learn_batch", "flush_dirty_learners", "online_model_for"]

log = logging.getLogger(__name__)

_PID = 32  # prediction ids are 32 hex characters
# A learner (River model, drift detectors) is pickled when written; once a second bounds both the cost
# and what a crash can lose (a restart continues from at most this much earlier).
LEARNER_FLUSH_S = 1.0


def _learner_key(partition: int) -> str:
    return f"partition-{partition}"


def _learner_cache(pipeline: Pipeline) -> TableCache:
    if pipeline.live_learners is None:
        pipeline.live_learners = TableCache(pipeline.learners, OutcomeLearner.from_bytes, OutcomeLearner.to_bytes)
    return pipeline.live_learners


def _learner(pipeline: Pipeline, key: str) -> OutcomeLearner:
    cache = _learner_cache(pipeline)
    learner = cache.get(key)
    if learner is None:
        model, metrics = pipeline.model, getattr(getattr(pipeline.model, "metadata", None), "metrics", {}) or {}
        learner = cache[key] = OutcomeLearner({model.version: float(metrics["accuracy"])} if "accuracy" in metrics else {})
    return learner


def online_model_for(pipeline: Pipeline, origin: list) -> Any:
    """index of a candle in the batch -> the River online model of its partition (for the ensemble)."""
    def online(index: int) -> Any:
        return _learner(pipeline, _learner_key(origin[index].message.partition)).online

    return online


async def label_and_learn_batch(pipeline: Pipeline, candles: list, origin: list, scored: Any) -> None:
    if pipeline.live_labellers is None:
        pipeline.live_labellers = TableCache(pipeline.labellers, Labeller.from_bytes, Labeller.to_bytes)
    labellers = pipeline.live_labellers
    rows = [(i, candles[i][0], p) for p, i in zip(scored.predictions, scored.sources)]
    for key in {f"{c.symbol}|{c.timeframe}" for _, c, _ in rows}:
        labellers.get(key)  # load from the table once
    result = label_and_learn(rows, labellers, lambda i: (k := _learner_key(origin[i].message.partition),
                                                         _learner(pipeline, k)))
    last_event: dict[str, Any] = {}
    for i, candle, p in rows:
        last_event[f"{candle.symbol}|{candle.timeframe}"] = origin[i]
        as_current(origin[i])
        slot = feature_slot(candle.symbol, candle.timeframe, candle.open_time, timeframe_ms(candle.timeframe))
        pipeline.prediction_features[slot.encode()] = p["id"].encode() + np.asarray(p["features"], np.float64).tobytes()
    for key in result.labellers:
        labellers.put(key, last_event[key])
    for i, _ in result.outcomes:  # learners are written by the flush timer: pickling one per batch costs too much
        pipeline.dirty_learners[_learner_key(origin[i].message.partition)] = origin[i]
    for _, outcome in result.outcomes:
        pipeline.outcomes.send_soon(key=outcome["symbol"].encode(), value=outcome)
    await remember_patterns(pipeline, [o for _, o in result.outcomes])
    for request in result.retrain_requests:
        log.warning("retrain requested for %s: %s", request["model_version"], ", ".join(request["reasons"]))
        pipeline.retrain_requests.send_soon(key=request["model_version"].encode(), value=request)


def attach_outcome_agents(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    codec = AvroCodec("Outcome", store_from_url(settings.schema_registry_url or None))
    outcomes_in = app.topic(settings.topic("outcomes"), key_serializer="raw", value_serializer="raw")

    @app.agent(outcomes_in, name="trades")
    async def trades(stream: Any) -> None:
        async for event in stream.events():
            try:
                outcome = codec.decode(event.message.value)
            except InvalidInput as exc:
                log.warning("undecodable outcome at offset %d: %s", event.message.offset, exc)
                continue
            if outcome["source"] != "TRADE":
                continue  # labels were learned where they were made
            key = _learner_key(event.message.partition)
            _learner(pipeline, key).update(outcome, _features_of(pipeline, outcome))
            pipeline.dirty_learners[key] = event

    @app.timer(LEARNER_FLUSH_S)
    async def flush_learners() -> None:
        flush_dirty_learners(pipeline)


def flush_dirty_learners(pipeline: Pipeline) -> None:
    """Write the learners that changed, each on the partition of the last event that changed it."""
    dirty, pipeline.dirty_learners = pipeline.dirty_learners, {}
    for key, event in dirty.items():
        if dict.__contains__(pipeline.live_learners, key):
            pipeline.live_learners.put(key, event)


def _features_of(pipeline: Pipeline, outcome: dict[str, Any]) -> np.ndarray | None:
    try:
        step = timeframe_ms(outcome["timeframe"])
    except InvalidInput:
        return None
    blob = pipeline.prediction_features.get(
        feature_slot(outcome["symbol"], outcome["timeframe"], outcome["open_time"], step).encode())
    if not blob or blob[:_PID].decode() != outcome.get("prediction_id"):
        return None  # older than the ring, or another prediction took the slot
    return np.frombuffer(blob[_PID:], dtype=np.float64)
