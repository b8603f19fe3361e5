"""Schema evolution as docs/schemas.md states it, both directions, and what an unknown writer gets.

Allowed: a new field with a default (optional fields are ``["null", T]`` with default null). Then a reader
of the current version reads messages of an older writer (the default fills in), and a reader still on an
older version reads messages of the current writer (the new field is skipped), given the writer's schema
by the id in the frame: from a registry, a worker's registry API, or ``LocalSchemaStore.add``.
"""

from __future__ import annotations

import json
import uuid
from io import BytesIO

import fastavro
import pytest

from schemas import AvroCodec, LocalSchemaStore, MultiCodec, RegistrySchemaStore, load_schema
from schemas.registry_api import RegistryAnswers
from schemas.store import local_schema_id
from core.errors import DecodeError
from core.candle_messages import decode_candle_message
from tests.schemas.avro_records import EXAMPLES, candle, completed


def framed(schema: dict, schema_id: int, record: dict) -> bytes:
    body = BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema, named_schemas={}), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def valid_candle(**overrides) -> dict:
    return candle(open_time=1_699_999_980_000, **overrides)  # on the 1m grid, so the worker accepts it


def newer_candle() -> dict:
    """A later Candle version: one more optional field, as the rules allow."""
    schema = load_schema("Candle")
    schema["fields"].append({"name": "venue", "type": ["null", "string"], "default": None})
    return schema


def test_a_new_reader_fills_in_what_an_older_writer_lacked():
    old = load_schema("Signal")
    old["fields"] = [f for f in old["fields"] if not f["name"].startswith("pattern_")]
    store = LocalSchemaStore()
    record = {k: v for k, v in EXAMPLES["Signal"].items() if not k.startswith("pattern_")}
    decoded = AvroCodec("Signal", store).decode(framed(old, store.add(old), record))
    assert decoded == completed(load_schema("Signal"), record) and decoded["pattern_k"] is None


def test_an_older_reader_skips_what_the_current_writer_added():
    """A consumer generated from an older Signal reads today's messages: the writer schema comes from the
    worker's registry API by the id in the frame, the new fields are dropped, the rest is intact."""
    store = LocalSchemaStore()
    message = AvroCodec("Signal", store).encode(EXAMPLES["Signal"])
    schema_id = int.from_bytes(message[1:5], "big")
    status, body = RegistryAnswers(store, {}).schema_by_id(schema_id)
    assert status == 200
    writer = fastavro.parse_schema(json.loads(body["schema"]), named_schemas={})
    old_reader = load_schema("Signal")
    old_reader["fields"] = [f for f in old_reader["fields"] if not f["name"].startswith("pattern_")]
    got = fastavro.schemaless_reader(BytesIO(message[5:]), writer, fastavro.parse_schema(old_reader, named_schemas={}))
    assert got == {k: v for k, v in completed(load_schema("Signal"), EXAMPLES["Signal"]).items()
                   if not k.startswith("pattern_")}


def test_a_newer_writer_known_to_the_registry_is_read_by_the_worker():
    """A producer already on the next Candle version registers it; the worker, on a registry, resolves it to
    its own version and scores the candle (the extra field is dropped)."""
    store = RegistrySchemaStore(f"mock://evolution-{uuid.uuid4().hex[:8]}")
    from confluent_kafka.schema_registry import Schema

    schema = newer_candle()
    schema_id = store.client.register_schema("candleflow.Candle", Schema(json.dumps(schema), "AVRO"))
    message = framed(schema, schema_id, {**valid_candle(trades=3), "venue": "binance"})
    [decoded] = decode_candle_message(MultiCodec(["Candle", "CandleBatch"], store), message)
    assert decoded.symbol == candle()["symbol"] and decoded.trades == 3 and not hasattr(decoded, "venue")


def test_a_newer_writer_unknown_here_is_a_decode_error_naming_its_id():
    """Without a registry the worker knows only the ids of its own schemas (and those given to
    ``LocalSchemaStore.add``): the message is refused, and its dead letter names the id."""
    schema = newer_candle()
    message = framed(schema, local_schema_id(schema), {**valid_candle(), "venue": None})
    with pytest.raises(DecodeError, match=f"unknown schema id {local_schema_id(schema)}"):
        decode_candle_message(MultiCodec(["Candle", "CandleBatch"], LocalSchemaStore()), message)
    store = LocalSchemaStore()
    store.add(schema)  # the operator's remedy without a registry: make the new version known
    [decoded] = decode_candle_message(MultiCodec(["Candle", "CandleBatch"], store), message)
    assert decoded.symbol == candle()["symbol"]


def test_a_field_added_without_a_default_breaks_old_messages():
    """Why the rule asks for defaults: a reader whose new field has none cannot read an older writer's data."""
    reader = load_schema("Candle")
    reader["fields"].append({"name": "venue", "type": "string"})
    message = AvroCodec("Candle", LocalSchemaStore()).encode(candle())
    writer = fastavro.parse_schema(load_schema("Candle"), named_schemas={})
    with pytest.raises(Exception, match="venue"):
        fastavro.schemaless_reader(BytesIO(message[5:]), writer, fastavro.parse_schema(reader, named_schemas={}))
