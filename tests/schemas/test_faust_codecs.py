"""The codecs registered with Faust round-trip through faust's own dumps/loads."""

import pytest
from faust.serializers import codecs

from schemas import SCHEMA_NAMES, LocalSchemaStore, load_schema, register_faust_codecs
from schemas.faust_codecs import codec_name
from core.errors import DecodeError, InvalidInput
from tests.schemas.avro_records import EXAMPLES, completed

NAMES = ["avro-candle", "avro-candle-batch", "avro-prediction", "avro-signal", "avro-outcome", "avro-dead-letter",
         "avro-prediction-batch", "avro-outcome-batch"]


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_faust_codecs(LocalSchemaStore())
    register_faust_codecs(LocalSchemaStore())  # a second start-up must not break anything


def test_codec_names():
    assert [codec_name(name) for name in SCHEMA_NAMES] == NAMES


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_round_trip_through_faust(name):
    data = codecs.dumps(codec_name(name), EXAMPLES[name])
    assert data[0] == 0
    assert codecs.loads(codec_name(name), data) == completed(load_schema(name), EXAMPLES[name])


def test_faust_codec_bytes_are_our_codec_bytes():
    by_name = register_faust_codecs(LocalSchemaStore())
    assert codecs.dumps("avro-signal", EXAMPLES["Signal"]) == by_name["avro-signal"].encode(EXAMPLES["Signal"])


def test_errors_keep_their_policy_types_through_faust():
    with pytest.raises(DecodeError):
        codecs.loads("avro-candle", b"\x01garbage")
    with pytest.raises(InvalidInput):
        codecs.dumps("avro-candle", {"symbol": "BTCUSDT"})


def test_chaining_with_another_faust_codec_keeps_the_avro_codec():
    chained = codecs.get_codec("avro-candle") | codecs.get_codec("binary")  # base64 around the Avro bytes
    assert chained.loads(chained.dumps(EXAMPLES["Candle"])) == completed(load_schema("Candle"), EXAMPLES["Candle"])
