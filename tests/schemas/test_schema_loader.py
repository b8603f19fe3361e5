"""The .avsc files load as self-contained schemas that every Avro implementation accepts."""

import json

import avro.schema
import fastavro
import pytest

from schemas import SCHEMA_NAMES, load_schema
from schemas.loader import _read_file


def test_schema_names_are_the_contract():
    assert SCHEMA_NAMES == ("Candle", "CandleBatch", "Prediction", "Signal", "Outcome", "DeadLetter",
                            "PredictionBatch", "OutcomeBatch")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_schema_parses_alone(name):
    schema = load_schema(name)
    assert schema["name"] == name and schema["namespace"] == "candleflow"
    # Fresh name tables: a schema that leaned on another file's definitions would fail here.
    fastavro.parse_schema(schema, named_schemas={})
    avro.schema.parse(json.dumps(schema))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_inlining_keeps_field_names(name):
    on_disk = [field["name"] for field in _read_file(name)["fields"]]
    assert [field["name"] for field in load_schema(name)["fields"]] == on_disk


def test_references_are_inlined_from_their_defining_file():
    batch = load_schema("CandleBatch")
    assert batch["fields"][0]["type"]["items"]["fields"] == load_schema("Candle")["fields"]
    signal_direction = next(f for f in load_schema("Signal")["fields"] if f["name"] == "direction")["type"]
    prediction_direction = next(f for f in load_schema("Prediction")["fields"] if f["name"] == "direction")["type"]
    assert signal_direction["symbols"] == prediction_direction["symbols"] == ["DOWN", "UP"]
    assert signal_direction["namespace"] == "candleflow"


def test_load_schema_returns_a_fresh_copy():
    load_schema("Candle")["fields"].clear()
    assert load_schema("Candle")["fields"]


def test_unknown_schema_name_is_a_key_error():
    with pytest.raises(KeyError, match="unknown schema"):
        load_schema("Trade")
