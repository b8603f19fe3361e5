"""Bad bytes always give DecodeError with a reason, and ill-typed records always give InvalidInput.

Hypothesis deadlines are off everywhere here: no test asserts on wall time.

These are the two promises the candle agent leans on to dead-letter a message and keep running.
"""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from schemas import SCHEMA_NAMES, AvroCodec, LocalSchemaStore, MultiCodec, load_schema
from core.errors import DecodeError, InvalidInput
from tests.schemas.avro_records import EXAMPLES, records

STORE = LocalSchemaStore()
CODECS = {name: AvroCodec(name, STORE) for name in SCHEMA_NAMES}
MULTI = MultiCodec(["Candle", "CandleBatch"], STORE)
KNOWN_IDS = {codec.schema_id for codec in CODECS.values()}

names = st.sampled_from(SCHEMA_NAMES)


def decode_error(codec, data) -> str:
    """The reason decode gives for ``data``; fails the test if decode raises anything else."""
    with pytest.raises(DecodeError) as caught:
        codec.decode(data)
    reason = str(caught.value)
    assert reason and "\n" not in reason
    return reason


def decodes_or_decode_error(codec, data):
    """Garbage can by chance be a valid record; anything else must be a DecodeError."""
    try:
        codec.decode(data)
    except DecodeError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(name=names, data=st.binary(max_size=64))
def test_random_bytes(name, data):
    decodes_or_decode_error(CODECS[name], data)
    decodes_or_decode_error(MULTI, data)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), name=names)
def test_truncated_messages(data, name):
    # Every schema ends in a field that takes at least one byte, so no strict prefix is a record.
    message = CODECS[name].encode(data.draw(records(name)))
    decode_error(CODECS[name], message[: data.draw(st.integers(0, len(message) - 1))])


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_prefix_of_an_example_is_a_decode_error(name):
    message = CODECS[name].encode(EXAMPLES[name])
    for cut in range(len(message)):
        decode_error(CODECS[name], message[:cut])


@settings(deadline=None)
@given(name=names, magic=st.integers(1, 255))
def test_wrong_magic_byte(name, magic):
    message = bytearray(CODECS[name].encode(EXAMPLES[name]))
    message[0] = magic
    assert "magic byte" in decode_error(CODECS[name], bytes(message))


@settings(deadline=None)
@given(name=names, schema_id=st.integers(0, 2**32 - 1), body=st.binary(max_size=32))
def test_unknown_schema_id(name, schema_id, body):
    assume(schema_id not in KNOWN_IDS)
    message = b"\x00" + schema_id.to_bytes(4, "big") + body
    assert f"unknown schema id {schema_id}" in decode_error(CODECS[name], message)
    assert f"unknown schema id {schema_id}" in decode_error(MULTI, message)


@settings(max_examples=300, deadline=None)
@given(name=names, body=st.binary(max_size=64))
def test_valid_header_garbage_body(name, body):
    codec = CODECS[name]
    decodes_or_decode_error(codec, b"\x00" + codec.schema_id.to_bytes(4, "big") + body)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_trailing_bytes_are_a_decode_error(name):
    assert "after the record" in decode_error(CODECS[name], CODECS[name].encode(EXAMPLES[name]) + b"\x00")


@pytest.mark.parametrize("data", [None, "text", 5, [0, 0]])
def test_non_bytes_are_a_decode_error(data):
    assert "expected bytes" in decode_error(CODECS["Candle"], data)


def test_invalid_utf8_in_a_string_is_a_decode_error():
    message = bytearray(CODECS["Candle"].encode(EXAMPLES["Candle"]))
    message[6] = 0xFF  # first byte of the symbol
    assert "UnicodeDecodeError" in decode_error(CODECS["Candle"], bytes(message))


def test_an_enum_index_out_of_range_is_a_decode_error():
    signal = EXAMPLES["Signal"]
    message = CODECS["Signal"].encode(signal)
    # The enum index follows id, prediction_id, symbol, timeframe (each a length byte + text) and open_time.
    enum_at = 5 + sum(1 + len(signal[k]) for k in ("id", "prediction_id", "symbol", "timeframe")) + 6
    assert message[enum_at] == 0  # DOWN
    broken = message[:enum_at] + b"\x08" + message[enum_at + 1:]
    decode_error(CODECS["Signal"], broken)


# -- encode: a record that does not fit its schema ---------------------------------------------------

def wrong_values(schema) -> st.SearchStrategy:
    """Values that are never valid for ``schema``."""
    kind = schema if isinstance(schema, str) else schema.get("type") if isinstance(schema, dict) else "union"
    anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                         st.binary(max_size=5), st.lists(st.integers(), max_size=2))
    if kind == "union":  # ["null", X]: anything wrong for X except null
        return wrong_values(next(b for b in schema if b != "null")).filter(lambda v: v is not None)
    valid = _validator(schema)
    return st.one_of(anything, st.integers(2**31, 2**70)).filter(lambda v: not valid(v))


def _validator(schema):
    """Whether a value fits ``schema`` (the parts of Avro these records use)."""
    if isinstance(schema, list):
        branches = [_validator(b) for b in schema]
        return lambda v: any(ok(v) for ok in branches)
    kind = schema if isinstance(schema, str) else schema.get("type")
    if kind == "null":
        return lambda v: v is None
    if kind == "array":  # a list whose every item fits (an empty list always does)
        item = _validator(schema["items"] if isinstance(schema["items"], (dict, list)) else schema["items"])
        return lambda v: isinstance(v, list) and all(item(x) for x in v)
    if kind == "map":
        value = _validator(schema["values"])
        return lambda v: isinstance(v, dict) and all(isinstance(k, str) and value(x) for k, x in v.items())
    return {
        "string": lambda v: isinstance(v, str),
        "bytes": lambda v: isinstance(v, bytes),
        "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "int": lambda v: type(v) is int and -(2**31) <= v < 2**31,
        "long": lambda v: type(v) is int and -(2**63) <= v < 2**63,
        "boolean": lambda v: isinstance(v, bool),
        "enum": lambda v: v in schema.get("symbols", ()),
    }.get(kind, lambda v: False)  # records and named references: no scalar fits


def fields_of(name):
    return {field["name"]: field for field in load_schema(name)["fields"]}


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=names)
def test_a_field_of_the_wrong_type_is_invalid_input(data, name):
    record = data.draw(records(name))
    field = data.draw(st.sampled_from(sorted(fields_of(name))))
    record[field] = data.draw(wrong_values(fields_of(name)[field]["type"]))
    with pytest.raises(InvalidInput, match=f"{name} record does not fit the schema"):
        CODECS[name].encode(record)


@settings(deadline=None)
@given(data=st.data(), name=names)
def test_a_missing_required_field_is_invalid_input(data, name):
    record = data.draw(records(name))
    required = sorted(n for n, f in fields_of(name).items() if "default" not in f)
    del record[data.draw(st.sampled_from(required))]
    with pytest.raises(InvalidInput, match="missing from the record"):
        CODECS[name].encode(record)


@settings(deadline=None)
@given(data=st.data(), name=names, extra=st.text(min_size=1, max_size=8))
def test_an_unknown_field_is_invalid_input(data, name, extra):
    record = data.draw(records(name))
    assume(extra not in fields_of(name))
    record[extra] = 1
    with pytest.raises(InvalidInput, match="more fields than the schema"):
        CODECS[name].encode(record)


def test_a_bad_candle_inside_a_batch_is_invalid_input():
    batch = {"candles": [dict(EXAMPLES["Candle"]), dict(EXAMPLES["Candle"], open_time=1.5)]}
    with pytest.raises(InvalidInput, match=r"CandleBatch.candles\[\].open_time: expected long"):
        CODECS["CandleBatch"].encode(batch)


@pytest.mark.parametrize("record", [None, [1, 2], "candle"])
def test_a_record_that_is_not_a_mapping_is_invalid_input(record):
    with pytest.raises(InvalidInput, match="must be a mapping"):
        CODECS["Candle"].encode(record)


def test_numpy_scalars_are_accepted():
    np = pytest.importorskip("numpy")
    record = dict(EXAMPLES["Prediction"], open_time=np.int64(1_700_000_000_000), close=np.float64(1.5),
                  horizon=np.int32(5), ready=np.bool_(True), features=np.array([0.5, 1.0]))
    decoded = CODECS["Prediction"].decode(CODECS["Prediction"].encode(record))
    assert decoded["open_time"] == 1_700_000_000_000 and decoded["ready"] is True
    assert decoded["features"] == [0.5, 1.0]
