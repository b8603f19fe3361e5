"""The outcome loop's agent side.

Labelling and learning run inside the candle agent's step (:func:`streams.step.process_batch`): the
candle at t labels the predictions of t - h, the partition's :class:`learning.learner.OutcomeLearner`
learns from the labels, and a drift watch that fires yields a ``retrain-requests`` event. Here:

- :func:`learner_for_partition`: the live learner of a partition (kept by :mod:`agents.checkpoint`);
- the ``trades`` agent: trade results (source TRADE) arriving on ``outcomes`` from trading engines are
  joined with the features of their candle (from the series' window of recent feature vectors) and
  update the same learner (P&L per version, the trade-loss drift watch), whose requests go out too;
- :func:`emit_retrain_requests`: a drift watch's requests onto ``retrain-requests`` (both agents).

Candles, predictions and outcomes are keyed by symbol on equally partitioned topics, so a symbol's
series state and its partition's learner live on the worker that owns the symbol.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from learning.learner import OutcomeLearner, partition_key
from schemas import MultiCodec, schema_store, unbatch
from streams.app import Pipeline
from core.errors import InvalidInput
from core.series_keys import series_key
from core.topics import labels_only

__all__ = ["attach_outcome_agents", "emit_retrain_requests", "learner_for_partition"]

log = logging.getLogger(__name__)


def learner_for_partition(pipeline: Pipeline, partition: int) -> tuple[str, OutcomeLearner]:
    """(key, learner) of ``partition``; a partition without one starts a fresh learner. The versions
    serving now (the active model and any candidate, including those a hot reload brought) are armed
    with their training profiles, so their drift watches run from their first outcome."""
    key = partition_key(partition)
    worker = pipeline.worker
    cache = worker.checkpoint.learners
    learner = cache.get(key)
    if learner is None:
        learner = cache[key] = OutcomeLearner()
    learner.arm_models([worker.model, worker.candidate[0] if worker.candidate else None])
    return key, learner


async def emit_retrain_requests(pipeline: Pipeline, requests: list[dict[str, Any]]) -> None:
    """Publish ``requests`` on ``retrain-requests`` (keyed by version) and mark them on the dashboard."""
    for request in requests:
        log.warning("retrain requested for %s: %s", request["model_version"], ", ".join(request["reasons"]))
        pipeline.learning_history.event(time.time(), "retrain request",
                                        f"{request['model_version']}: {', '.join(request['reasons'])}")
        await pipeline.worker.checkpoint.send(pipeline.retrain_requests.get_topic_name(),
                                              request["model_version"].encode(), json.dumps(request).encode())


def attach_outcome_agents(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    codec = MultiCodec(["Outcome", "OutcomeBatch"], schema_store(settings))
    outcomes_in = app.topic(settings.topic("outcomes"), key_serializer="raw", value_serializer="raw")

    @app.agent(outcomes_in, name="trades")
    async def trades(stream: Any) -> None:
        async for event in stream.events():
            if labels_only(event.message.headers):  # a worker's labels: learned where they were made
                continue
            try:
                name, record = codec.decode(event.message.value)
            except InvalidInput as exc:
                log.warning("undecodable outcome at offset %d: %s", event.message.offset, exc)
                continue
            trades = [o for _, o in unbatch(name, record) if o["source"] == "TRADE"]  # labels were learned where made
            if not trades:
                continue
            async with pipeline.worker.checkpoint.batch_lock:  # the candle agent's step may be using the same learner
                await pipeline.worker.checkpoint.settle()  # the labels before this trade are learned first
                key, learner = learner_for_partition(pipeline, event.message.partition)
                requests = []
                for outcome in trades:
                    series = pipeline.worker.checkpoint.current(series_key(outcome["symbol"], outcome["timeframe"]))
                    request = learner.update(outcome, series.features_at(outcome["open_time"]) if series is not None else None)
                    if request is not None:
                        requests.append(request)
                await emit_retrain_requests(pipeline, requests)
                pipeline.worker.checkpoint.learner_changed(key, event)
