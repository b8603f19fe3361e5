"""A worker's URL is a Schema Registry to confluent-kafka's own client: its AvroSerializer writes candles the
worker scores, its AvroDeserializer decodes every topic the worker writes, with no code of ours."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.loader import load_schema
from tests.integration.test_candle_pipeline import publish, real_candles

pytestmark = pytest.mark.integration


def read_all(settings, topic: str, until, timeout_s: float = 90.0) -> list:
    """Every message of ``topic`` from offset 0 (assigned, no group join) until ``until(messages)`` holds."""
    consumer = Consumer({"bootstrap.servers": settings.broker.bootstrap, "group.id": f"sr-test-{topic}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    messages, deadline = [], time.monotonic() + timeout_s
    try:
        while not until(messages) and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                messages.append(m)
    finally:
        consumer.close()
    return messages


def test_confluent_clients_need_only_the_workers_url(app_settings, worker_factory):
    settings = app_settings()
    worker = worker_factory(settings)
    registry = SchemaRegistryClient({"url": f"http://{settings.web.host}:{settings.web.port}"})

    # Producer side: the serializer finds the latest version of "<topic>-value" and writes with its id.
    candle_topic = settings.candle_topic("5m")
    serializer = AvroSerializer(registry, conf={"auto.register.schemas": False, "use.latest.version": True})
    candles = real_candles(40)
    # librdkafka's default partitioner is not Java's: keyed records must land where Kafka's murmur2 puts them.
    producer = Producer({"bootstrap.servers": settings.broker.bootstrap, "partitioner": "murmur2_random"})
    for c in candles:
        value = serializer(c.to_record(), SerializationContext(candle_topic, MessageField.VALUE))
        producer.produce(candle_topic, key=c.symbol.encode(), value=value)
    bad = dict(candles[-1].to_record(), open_time=candles[-1].open_time + 300_000, high=candles[-1].low * 0.5)
    producer.produce(candle_topic, key=bad["symbol"].encode(),
                     value=serializer(bad, SerializationContext(candle_topic, MessageField.VALUE)))
    assert producer.flush(30) == 0

    # Consumer side: every record of every topic the worker writes, decoded by the id in its frame.
    deserializer = AvroDeserializer(registry)

    def decoded(name: str, until) -> list[dict]:
        topic = settings.topic(name)
        return [deserializer(m.value(), SerializationContext(topic, MessageField.VALUE))
                for m in read_all(settings, topic, until)]

    def predictions_in(ms) -> int:
        return sum(len(deserializer(m.value(), SerializationContext(m.topic(), MessageField.VALUE))["predictions"])
                   for m in ms)

    batches = decoded("predictions", lambda ms: predictions_in(ms) >= len(candles))
    predictions = [p for b in batches for p in b["predictions"]]
    assert {(p["symbol"], p["open_time"]) for p in predictions} == {(c.symbol, c.open_time) for c in candles}
    implied = sum(1 for p in predictions if p["ready"] and p["confidence"] >= settings.signal_threshold)
    signals = decoded("signals", lambda ms: len(ms) >= implied)
    assert len(signals) == implied and all(s["direction"] in ("UP", "DOWN") for s in signals)
    dead = decoded("dead-letters", lambda ms: len(ms) >= 1)
    assert len(dead) == 1 and "high" in dead[0]["reason"]
    outcomes = decoded("outcomes", lambda ms: len(ms) >= 1)
    assert outcomes and all(o["outcomes"] for o in outcomes)
    # The candle topic too: what the serializer wrote, and CandleBatch messages of Candleflow's own producer.
    later = [dataclasses.replace(c, open_time=c.open_time + 86_400_000) for c in candles[-2:]]
    asyncio.run(publish(settings, later, batch_every=2))

    def candles_in(ms) -> int:
        return sum(len(r.get("candles", [r])) for r in
                   (deserializer(m.value(), SerializationContext(m.topic(), MessageField.VALUE)) for m in ms))

    on_topic = decoded("candles.5m", lambda ms: candles_in(ms) >= len(candles) + 1 + len(later))
    singles = [r for r in on_topic if "candles" not in r]
    batched = [c for r in on_topic if "candles" in r for c in r["candles"]]
    key = lambda r: (r["symbol"], r["open_time"])  # noqa: E731
    assert sorted(singles, key=key) == sorted([c.to_record() for c in candles] + [bad], key=key)
    assert sorted(batched, key=key) == sorted((c.to_record() for c in later), key=key)

    # The registry's answers as the client reads them: errors with Confluent's codes, registration read-only.
    with pytest.raises(SchemaRegistryError) as missing:
        registry.get_schema(7)
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as no_subject:
        registry.get_latest_version("no-such-topic-value")
    assert no_subject.value.error_code == 40401
    same = Schema(json.dumps(load_schema("Candle")), "AVRO")
    assert registry.register_schema(f"{candle_topic}-value", same) == registry.get_latest_version(f"{candle_topic}-value").schema_id
    changed = load_schema("Candle")
    changed["fields"].append({"name": "venue", "type": ["null", "string"], "default": None})
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(f"{candle_topic}-value", Schema(json.dumps(changed), "AVRO"))
    assert refused.value.error_code == 42205
    assert worker.get("/ready")["ready"]

    # Every read endpoint over plain HTTP, with the registry's content type.
    base = f"http://{settings.web.host}:{settings.web.port}"
    candle_id = registry.get_latest_version(f"{candle_topic}-value").schema_id

    def get(path: str) -> tuple[int, str, object]:
        try:
            with urllib.request.urlopen(base + path, timeout=10) as r:
                return r.status, r.headers["Content-Type"], json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], json.loads(exc.read())

    subject = f"{candle_topic}-value"
    expected = {f"/schemas/ids/{candle_id}/schema": (200, load_schema("Candle")),
                f"/schemas/ids/{candle_id}/subjects": (200, ["candleflow.Candle", subject]),
                f"/schemas/ids/{candle_id}/versions": (200, [{"subject": "candleflow.Candle", "version": 1},
                                                              {"subject": subject, "version": 1}]),
                "/schemas/ids/not-a-number": (404, {"error_code": 40403, "message": "Schema not-a-number not found"}),
                "/schemas/types": (200, ["AVRO"]),
                f"/subjects/{subject}/versions": (200, [1]),
                f"/subjects/{subject}/versions/1/schema": (200, load_schema("Candle")),
                "/config": (200, {"compatibilityLevel": "BACKWARD"}),
                f"/config/{subject}": (200, {"compatibilityLevel": "BACKWARD"}),
                "/mode": (200, {"mode": "READONLY"})}
    for path, (status, body) in expected.items():
        assert get(path) == (status, "application/vnd.schemaregistry.v1+json", body), path
    assert subject in get("/subjects")[2]
