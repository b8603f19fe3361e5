"""The ``model-events`` topic, the contract between the registry and the workers: the event format, publishing
events, and reading them back as a worker does.

:func:`model_event` is the one place the event format is written (``agents/model_events.py`` and
``models/deployment.py`` read it):

>>> e = model_event("lgbm-direction", "v2", "activate", "/var/artifacts/ab", previous_version="v1",
...                 reason="better", time_ms=1, event_id="e1")
>>> sorted(e)
['action', 'artifact_dir', 'event_id', 'name', 'previous_version', 'reason', 'time', 'traffic_share', 'version']
>>> model_event("m", "v", "promote", "/x")
Traceback (most recent call last):
...
core.errors.ConfigError: unknown model event action 'promote'; known: activate, candidate, rollback, retire
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from kafka_io.client_internals import refresh_metadata
from kafka_io.security import aiokafka_security
from models.deployment import ACTIONS  # one home: the actions a model event carries

__all__ = ["ACTIONS", "EventPublisher", "model_event", "previous_active", "read_model_events", "wait_for_model_event"]


def model_event(name: str, version: str, action: str, artifact_dir: str | Path, *, traffic_share: float = 0.0,
                previous_version: str | None = None, reason: str = "", time_ms: int | None = None,
                event_id: str | None = None) -> dict[str, Any]:
    """A ``model-events`` value (see docs/training.md); ``traffic_share`` is 1.0 for the active version."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown model event action {action!r}; known: {', '.join(ACTIONS)}")
    if not 0.0 <= traffic_share <= 1.0:
        raise ConfigError(f"traffic_share must be within 0..1, got {traffic_share}")
    return {"event_id": event_id or uuid.uuid4().hex, "name": name, "version": version, "action": action,
            "artifact_dir": str(Path(artifact_dir).resolve()), "traffic_share": float(traffic_share),
            "previous_version": previous_version, "reason": reason,
            "time": int(time.time() * 1000) if time_ms is None else time_ms}


class EventPublisher:
    """An aiokafka producer for ``model-events``: key = model name, value = JSON; each send is awaited."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.topic = settings.topic("model-events")
        self._producer = None

    async def start(self) -> EventPublisher:
        from aiokafka import AIOKafkaProducer

        # acks=all: a registry change is rare and must not be lost to a leader change.
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.broker.bootstrap, acks="all", linger_ms=0,
                                          **aiokafka_security(self.settings))
        await self._producer.start()
        return self

    async def publish(self, event: dict[str, Any]) -> None:
        if self._producer is None:
            raise ConfigError("EventPublisher.start() was not awaited")
        value = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        await self._producer.send_and_wait(self.topic, value, key=event["name"].encode())

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def __aenter__(self) -> EventPublisher:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def read_model_events(settings, idle_s: float = 1.0, timed: bool = False) -> list[Any]:
    """Every event on ``model-events`` from the beginning, as a worker reads them (no group, all partitions),
    in offset order per partition; stops once nothing new arrived for ``idle_s``. ``timed``: (message
    time in ms, event) pairs, leaving out what is not a JSON object as a worker ignores it (the replay's
    :class:`models.deployment.DeploymentTimeline`)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = settings.topic("model-events")
    # A short fetch wait: a broker may hold a fetch that long, and an idle window no longer than it ends early.
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=min(50, int(idle_s * 500)), **aiokafka_security(settings))
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await refresh_metadata(consumer)  # a fresh client may not have the topic's metadata yet
            partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return []  # no model-events topic: nothing was ever deployed through it
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        events: list[Any] = []
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000))
            if not batch:
                return events
            for records in batch.values():
                if not timed:
                    events += [json.loads(r.value) for r in records]
                    continue
                for r in records:
                    try:
                        event = json.loads(r.value) if r.value is not None else None
                    except ValueError:
                        event = None
                    if isinstance(event, dict):
                        events.append((r.timestamp, event))
    finally:
        await consumer.stop()


async def wait_for_model_event(settings, predicate, timeout_s: float = 30.0, poll_s: float = 0.5) -> dict[str, Any]:
    """The first ``model-events`` event for which ``predicate(event)`` is true; TimeoutError after ``timeout_s``.

    For tests and tools, e.g. ``await wait_for_model_event(s, lambda e: e["action"] == "candidate")``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        for event in await read_model_events(settings, idle_s=poll_s):
            if predicate(event):
                return event
        if time.monotonic() > deadline:
            raise TimeoutError(f"no matching event on {settings.topic('model-events')} within {timeout_s:.0f} s")


def previous_active(history: list[dict[str, Any]], current: str | None) -> str | None:
    """The version a rollback restores, replaying activations as a stack (a rollback pops one): ``history`` is
    the model's activate and rollback events (the registry's ``deployments`` rows) in order.

    >>> h = [{"action": "activate", "model_version": v, "previous_version": None} for v in "ABC"]
    >>> previous_active(h, "C")
    'B'
    >>> previous_active(h + [{"action": "rollback", "model_version": "B", "previous_version": "C"}], "B")
    'A'
    """
    stack: list[str] = []
    for event in history:
        if event["action"] == "activate":
            if not stack or stack[-1] != event["model_version"]:
                stack.append(event["model_version"])
        else:
            if stack and stack[-1] == event["previous_version"]:
                stack.pop()
            if not stack or stack[-1] != event["model_version"]:
                stack.append(event["model_version"])
    if not stack or stack[-1] != current or len(stack) < 2:
        return None
    return stack[-2]
