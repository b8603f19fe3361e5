"""Records to Confluent-framed Avro bytes and back, for one record type or a few.

Parsed schemas live in the store and resolution plans here, both per schema id, so a message
costs one dict lookup plus fastavro's compiled reader or writer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.checks import compile_checks
from schemas.fast_writer import NotPlain, compile_writer
from schemas.loader import full_name, load_schema
from schemas.store import SchemaStore, parse
from schemas.wire import HEADER_SIZE, frame, schema_id_of
from core.errors import DecodeError, InvalidInput

__all__ = ["AvroCodec", "MultiCodec"]

_NOT_PLAIN = (NotPlain, struct.error, OverflowError, UnicodeEncodeError)  # what sends a record the general way


class AvroCodec:
    """Encode and decode one record type (``name`` from :data:`SCHEMA_NAMES`) through ``store``.

    Decoding reads with the writer's schema (found by the id in the frame) and resolves to this
    codec's schema, so records written by an older compatible schema still decode.

    >>> from schemas.store import LocalSchemaStore
    >>> codec = AvroCodec("Candle", LocalSchemaStore())
    >>> data = codec.encode({"symbol": "BTCUSDT", "timeframe": "1m", "open_time": 1700000000000,
    ...                      "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0})
    >>> data[0], len(data)
    (0, 67)
    >>> record = codec.decode(data)
    >>> record["close"], record["trades"]
    (1.5, None)
    """

    def __init__(self, name: str, store: SchemaStore) -> None:
        self.name = name
        self.full_name = full_name(name)
        self.store = store
        self._reader = parse(load_schema(name))
        self._check = compile_checks(self._reader)
        self._fast = compile_writer(self._reader)  # the plain case, same bytes (schemas/fast_writer.py)
        self._header: bytes | None = None
        # schema id -> (writer schema, reader schema or None when no resolution is needed)
        self._plans: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}

    @property
    def schema_id(self) -> int:
        """The id this codec writes (registers the schema on first use with a registry store)."""
        return self.store.schema_id(self.name)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Confluent-framed Avro bytes for ``record``; :class:`InvalidInput` if it does not fit."""
        header = self._header
        if header is None:
            # Outside the try below: a registry outage is Retryable, not the record's fault.
            header = self._header = frame(self.schema_id)
        if self._fast is not None:
            fast = bytearray(header)
            try:
                self._fast(record, fast)
                return bytes(fast)
            except _NOT_PLAIN:
                pass  # numpy scalars, defaults to fill, or a record that does not fit: the general way says which
        if not isinstance(record, Mapping):
            raise InvalidInput(f"{self.name} record must be a mapping, got {type(record).__name__}")
        out = BytesIO()
        out.write(header)
        try:
            self._check(record)
            # strict_allow_default: a missing required field or a misspelt extra key is an error, not a
            # silent null, while fields with a default (the optional ones) may still be left out.
            schemaless_writer(out, self._reader, record, strict_allow_default=True)
        except Exception as exc:
            raise InvalidInput(f"{self.name} record does not fit the schema: {_reason(exc)}") from exc
        return out.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """The record in ``data``; :class:`DecodeError` with the reason for any bytes that are not one."""
        return self._read(schema_id_of(data), data)

    def _read(self, schema_id: int, data: bytes) -> dict[str, Any]:
        plan = self._plans.get(schema_id) or self._plan(schema_id)
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(body, plan[0], plan[1])
        except Exception as exc:
            raise DecodeError(f"{self.name} body (schema id {schema_id}) does not decode: {_reason(exc)}") from exc
        trailing = len(data) - body.tell()
        if trailing:
            raise DecodeError(f"{self.name} body (schema id {schema_id}) has {trailing} bytes after the record")
        return record

    def _plan(self, schema_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        writer = self.store.writer_schema(schema_id)
        aliases = {self.full_name, *self._reader.get("aliases", ())}
        if writer.get("name") not in aliases:
            raise DecodeError(f"schema id {schema_id} is {writer.get('name')}, not {self.full_name}")
        # Equal schemas need no resolution; deciding it once here spares fastavro a deep compare per message.
        plan = (writer, None if writer == self._reader else self._reader)
        self._plans[schema_id] = plan
        return plan


class MultiCodec:
    """Several record types on one topic: decoding tells which one each message is.

    >>> from schemas.store import LocalSchemaStore
    >>> multi = MultiCodec(["Candle", "CandleBatch"], LocalSchemaStore())
    >>> multi.decode(multi.encode("CandleBatch", {"candles": []}))
    ('CandleBatch', {'candles': []})
    """

    def __init__(self, names: Iterable[str], store: SchemaStore) -> None:
        self.codecs = {name: AvroCodec(name, store) for name in names}
        self.store = store
        self._by_full_name = {codec.full_name: codec for codec in self.codecs.values()}
        self._by_id: dict[int, AvroCodec] = {}

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Bytes for ``record`` as record type ``name``."""
        try:
            codec = self.codecs[name]
        except KeyError:
            raise InvalidInput(f"{name!r} is not one of {', '.join(self.codecs)}") from None
        return codec.encode(record)

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """``(name, record)`` for ``data``, the name chosen by the writer schema's id."""
        schema_id = schema_id_of(data)
        codec = self._by_id.get(schema_id)
        if codec is None:
            writer_name = self.store.writer_schema(schema_id).get("name")
            codec = self._by_full_name.get(writer_name)
            if codec is None:
                raise DecodeError(f"schema id {schema_id} is {writer_name}, not one of {', '.join(self.codecs)}")
            self._by_id[schema_id] = codec
        return codec.name, codec._read(schema_id, data)


def _reason(exc: Exception) -> str:
    """One line naming what went wrong, even for exceptions with an empty message."""
    text = " ".join(str(exc).split())
    if len(text) > 300:  # fastavro quotes the offending value: a hostile 5 MB string must not become the reason
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
