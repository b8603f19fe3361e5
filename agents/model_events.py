"""Hot reload: every worker follows ``model-events`` and swaps its models without stopping the stream.

Each worker reads the whole topic from the beginning with its own consumer and no consumer group, so
every worker sees every event (a Faust GlobalTable did not keep non-owning workers up to date on the
embedded broker: docs/platform.md). A new model is loaded and warmed up off the event loop, then swapped in
with one assignment; the candle agent takes its models once per batch, so no batch is scored by a
half-loaded model and none waits. A model that fails to load is reported and the previous one serves on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from models.deployment import Deployment
from models.loading import load_model
from streams.app import Pipeline
from kafka_io.client_internals import refresh_metadata
from core.errors import CandleflowError, InvalidInput
from core.gc_policy import refreeze
from kafka_io.security import aiokafka_security

__all__ = ["attach_model_reloader", "apply_deployment"]

log = logging.getLogger(__name__)


async def apply_deployment(pipeline: Pipeline, deployment: Deployment) -> None:
    """Load what the deployment names and is not loaded yet; swap it in."""
    worker = pipeline.worker
    loaded = lambda: (worker.model, worker.candidate and worker.candidate[0])  # noqa: E731
    before = loaded()
    await _swap(pipeline, deployment)
    if any(now is not then for now, then in zip(loaded(), before)):
        refreeze()  # a swapped-out model must not stay frozen out of collection (core/gc_policy.py)


def _load(pipeline: Pipeline, artifact_dir: str) -> Any:
    # Off the event loop (compiling a model's trees the first time takes a second or more).
    return load_model(artifact_dir, tree_runtime=pipeline.settings.tree_runtime)


async def _swap(pipeline: Pipeline, deployment: Deployment) -> None:
    loop, worker = asyncio.get_running_loop(), pipeline.worker  # the models are the model-events agent's to set
    active = deployment.active
    if active is not None and getattr(worker.model, "version", None) != active.version:
        try:
            model = await loop.run_in_executor(None, _load, pipeline, active.artifact_dir)
        except CandleflowError as exc:
            worker.model_errors.append(f"{active.version}: {exc}")
            log.error("model %s not loaded, %s keeps serving: %s", active.version, worker.model.version, exc)
        else:
            if model.version != active.version:
                log.warning("model event says %s but %s holds %s", active.version, active.artifact_dir, model.version)
            worker.model = model
            log.info("now serving %s", model.version)
    candidate = deployment.candidate
    if candidate is None:
        worker.candidate = None
    elif worker.candidate is None or worker.candidate[0].version != candidate.version:
        try:
            model = await loop.run_in_executor(None, _load, pipeline, candidate.artifact_dir)
        except CandleflowError as exc:
            worker.model_errors.append(f"{candidate.version}: {exc}")
            log.error("candidate %s not loaded: %s", candidate.version, exc)
        else:
            worker.candidate = (model, candidate.share)
            if pipeline.settings.ab_mode == "shadow":
                log.info("candidate %s scores every candle in shadow (never traded)", model.version)
            else:
                log.info("candidate %s serves %.0f%% of symbols", model.version, candidate.share * 100)
    elif worker.candidate[1] != candidate.share:
        worker.candidate = (worker.candidate[0], candidate.share)


def attach_model_reloader(pipeline: Pipeline) -> None:
    settings = pipeline.settings

    @pipeline.app.task
    async def follow_model_events() -> None:
        topic = settings.topic("model-events")
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap, group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=max(settings.broker.fetch_max_wait_ms, 100), **aiokafka_security(settings))
        await consumer.start()
        deployment = Deployment()
        try:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:  # created by the worker at start; metadata may lag a moment
                await refresh_metadata(consumer)
                partitions = consumer.partitions_for_topic(topic) or await asyncio.sleep(0.5)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                changed = False
                for messages in batch.values():
                    for m in messages:
                        try:
                            event = json.loads(m.value) if m.value is not None else None  # None: a tombstone
                            if not isinstance(event, dict):
                                raise InvalidInput(f"a model event is a JSON object, got {type(event).__name__}")
                            changed |= deployment.apply(event)
                        except (ValueError, CandleflowError) as exc:
                            log.error("ignoring model event at offset %d: %s", m.offset, exc)
                if changed:
                    await apply_deployment(pipeline, deployment)
        finally:
            await consumer.stop()
