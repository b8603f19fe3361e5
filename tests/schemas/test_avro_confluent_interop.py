"""Our codec and confluent-kafka's own AvroSerializer/AvroDeserializer read each other's messages.

No Schema Registry server can run here, so these tests use a registry *client double*:
confluent-kafka's in-process mock client (``SchemaRegistryClient.new_client({"url": "mock://..."})``),
which registers schemas and hands out ids like a registry, without a server. Our
:class:`RegistrySchemaStore` and confluent-kafka's serializers share that one client, so an id one
side registers is an id the other side can look up, exactly as with a real registry.
"""

import json
import uuid

import pytest
from confluent_kafka.schema_registry import record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    SCHEMA_NAMES,
    AvroCodec,
    MultiCodec,
    RegistrySchemaStore,
    load_schema,
)
from core.errors import DecodeError
from tests.schemas.avro_records import EXAMPLES, completed, records, same

CONTEXT = SerializationContext("candles.1m", MessageField.VALUE)


def registry_store() -> RegistrySchemaStore:
    """A store on a fresh client double (each mock:// client keeps its own registrations)."""
    return RegistrySchemaStore(f"mock://candleflow-{uuid.uuid4().hex[:8]}")


def their_serializer(store: RegistrySchemaStore, name: str) -> AvroSerializer:
    return AvroSerializer(store.client, json.dumps(load_schema(name)),
                          conf={"subject.name.strategy": record_subject_name_strategy})


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_we_read_what_confluent_kafka_writes(name):
    store = registry_store()
    data = their_serializer(store, name)(EXAMPLES[name], CONTEXT)
    assert data[0] == 0  # the classic framing: magic byte, then the id
    assert AvroCodec(name, store).decode(data) == completed(load_schema(name), EXAMPLES[name])
    # RecordNameStrategy: both sides use the record's full name as the subject.
    assert f"candleflow.{name}" in store.client.get_subjects()


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_confluent_kafka_reads_what_we_write(name):
    store = registry_store()
    data = AvroCodec(name, store).encode(EXAMPLES[name])
    assert AvroDeserializer(store.client)(data, CONTEXT) == completed(load_schema(name), EXAMPLES[name])


def test_multi_codec_reads_confluent_kafka_batches_and_candles():
    store = registry_store()
    multi = MultiCodec(["Candle", "CandleBatch"], store)
    batch = their_serializer(store, "CandleBatch")(EXAMPLES["CandleBatch"], CONTEXT)
    single = their_serializer(store, "Candle")(EXAMPLES["Candle"], CONTEXT)
    assert multi.decode(batch)[0] == "CandleBatch"
    assert multi.decode(single)[0] == "Candle"


@settings(max_examples=40, deadline=None)
@given(record=records("Prediction"))
def test_interop_on_generated_predictions(record):
    store = registry_store()
    expected = completed(load_schema("Prediction"), record)
    assert same(AvroCodec("Prediction", store).decode(their_serializer(store, "Prediction")(record, CONTEXT)), expected)
    assert same(AvroDeserializer(store.client)(AvroCodec("Prediction", store).encode(record), CONTEXT), expected)


@settings(deadline=None)
@given(schema_id=st.integers(100, 2**31 - 1))
def test_an_id_the_registry_does_not_know_is_a_decode_error(schema_id):
    store = registry_store()
    assert AvroCodec("Candle", store).schema_id != schema_id  # something is registered, just not this id
    with pytest.raises(DecodeError, match=f"unknown schema id {schema_id}"):
        AvroCodec("Candle", store).decode(b"\x00" + schema_id.to_bytes(4, "big") + b"\x02")
