"""Apache's own ``avro`` package, an independent implementation, agrees with our bodies both ways."""

import io
import json

import avro.io
import avro.schema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import SCHEMA_NAMES, AvroCodec, LocalSchemaStore, load_schema
from tests.schemas.avro_records import EXAMPLES, completed, records, same

STORE = LocalSchemaStore()


def apache_schema(name):
    return avro.schema.parse(json.dumps(load_schema(name)))


def apache_read(name, body):
    return avro.io.DatumReader(apache_schema(name)).read(avro.io.BinaryDecoder(io.BytesIO(body)))


def apache_write(name, record):
    out = io.BytesIO()
    avro.io.DatumWriter(apache_schema(name)).write(record, avro.io.BinaryEncoder(out))
    return out.getvalue()


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_apache_avro_decodes_our_bodies_identically(name, data):
    record = data.draw(records(name))
    codec = AvroCodec(name, STORE)
    message = codec.encode(record)
    assert same(apache_read(name, message[5:]), codec.decode(message))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_we_decode_apache_avro_bodies_identically(name, data):
    record = completed(load_schema(name), data.draw(records(name)))
    codec = AvroCodec(name, STORE)
    message = b"\x00" + codec.schema_id.to_bytes(4, "big") + apache_write(name, record)
    assert same(codec.decode(message), record)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_bodies_are_byte_identical_to_apache_avro(name):
    record = completed(load_schema(name), EXAMPLES[name])
    assert AvroCodec(name, STORE).encode(record)[5:] == apache_write(name, record)
