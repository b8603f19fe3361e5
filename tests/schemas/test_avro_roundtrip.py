"""Every schema round-trips through the codec, with and without its optional fields."""

import json
import subprocess
import sys
from io import BytesIO

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import SCHEMA_NAMES, AvroCodec, LocalSchemaStore, MultiCodec, load_schema
from schemas.store import local_schema_id
from core.errors import DecodeError
from tests.schemas.avro_records import EXAMPLES, candle, completed, records, same

STORE = LocalSchemaStore()


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(name, data):
    record = data.draw(records(name))
    codec = AvroCodec(name, STORE)
    encoded = codec.encode(record)
    assert encoded[:5] == b"\x00" + codec.schema_id.to_bytes(4, "big")
    assert same(codec.decode(encoded), completed(load_schema(name), record))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_examples_round_trip(name):
    codec = AvroCodec(name, STORE)
    assert codec.decode(codec.encode(EXAMPLES[name])) == completed(load_schema(name), EXAMPLES[name])


def test_candle_with_every_optional_field():
    full = candle(quote_volume=1.0, trades=7, taker_buy_base_volume=0.5, taker_buy_quote_volume=0.25,
                  spread_bps=2.0)
    codec = AvroCodec("Candle", STORE)
    assert codec.decode(codec.encode(full)) == full


def test_candle_without_optional_fields_reads_them_as_none():
    decoded = AvroCodec("Candle", STORE).decode(AvroCodec("Candle", STORE).encode(candle()))
    assert decoded["quote_volume"] is None and decoded["spread_bps"] is None and decoded["trades"] is None


def test_local_ids_are_the_same_in_another_process():
    """Producer and worker processes each build their own store; they must agree with no coordination."""
    script = "import json; from schemas import *; s = LocalSchemaStore(); print(json.dumps({n: s.schema_id(n) for n in SCHEMA_NAMES}))"
    other = json.loads(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout)
    assert other == {name: STORE.schema_id(name) for name in SCHEMA_NAMES}


def test_local_ids_are_distinct_31_bit_and_non_zero():
    ids = [STORE.schema_id(name) for name in SCHEMA_NAMES]
    assert len(set(ids)) == len(ids)
    assert all(0 < schema_id < 2**31 for schema_id in ids)


def test_multi_codec_names_each_message_by_its_writer_schema():
    multi = MultiCodec(["Candle", "CandleBatch"], STORE)
    assert multi.decode(multi.encode("Candle", candle()))[0] == "Candle"
    name, batch = multi.decode(multi.encode("CandleBatch", EXAMPLES["CandleBatch"]))
    assert name == "CandleBatch" and len(batch["candles"]) == 2
    # A message written by a single-record codec is the same bytes, so it is read too.
    assert multi.decode(AvroCodec("Candle", STORE).encode(candle()))[1]["symbol"] == "BTCUSDT"


def test_multi_codec_rejects_other_records():
    signal = AvroCodec("Signal", STORE).encode(EXAMPLES["Signal"])
    with pytest.raises(DecodeError, match="candleflow.Signal, not one of Candle, CandleBatch"):
        MultiCodec(["Candle", "CandleBatch"], STORE).decode(signal)


def test_codec_rejects_a_message_of_another_record():
    prediction = AvroCodec("Prediction", STORE).encode(EXAMPLES["Prediction"])
    with pytest.raises(DecodeError, match="is candleflow.Prediction, not candleflow.Candle"):
        AvroCodec("Candle", STORE).decode(prediction)


def test_message_from_an_older_schema_resolves_to_the_current_one():
    """A producer still on a Candle without spread_bps: its writer schema is resolved to ours."""
    old = load_schema("Candle")
    old["fields"] = [f for f in old["fields"] if f["name"] != "spread_bps"]
    store = LocalSchemaStore()
    store.add(old)
    body = BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(old, named_schemas={}), candle(trades=3))
    message = b"\x00" + local_schema_id(old).to_bytes(4, "big") + body.getvalue()
    assert AvroCodec("Candle", store).decode(message) == completed(load_schema("Candle"), candle(trades=3))
