"""Avro bodies written by plain Python compiled once per schema: the same bytes as fastavro, ~5x cheaper.

Measured (2026-12-06): a PredictionBatch of 500 predictions cost ~35 us per prediction through the type
checks and fastavro's writer — more than the batch step that made it. Our own output records have a
fixed shape (``schemas/*.avsc``): a writer compiled from the schema into nested closures appends each
field to a ``bytearray`` (zig-zag varints, ``struct`` for doubles, a feature vector in one ``pack``).

Only the plain case is taken: every field present, no extra key, values of exactly the schema's Python
types, numbers in range. Anything else raises :class:`NotPlain` and the caller encodes the record the
general way (:meth:`schemas.codec.AvroCodec.encode`), which coerces numpy scalars, fills defaults and
words the error of a record that does not fit. A schema with a construct this module does not write
(fixed, bytes, unions of two non-null branches, recursive names) compiles to None: always the general way.

>>> from schemas.loader import load_schema
>>> from schemas.store import parse
>>> from fastavro import schemaless_writer
>>> from io import BytesIO
>>> schema = parse(load_schema("Candle"))
>>> write = compile_writer(schema)
>>> candle = {"symbol": "ETH-BTC", "timeframe": "5m", "open_time": 1515560100000, "open": 0.09, "high": 0.1,
...           "low": 0.08, "close": 0.095, "volume": 12.5, "quote_volume": None, "trades": 7,
...           "taker_buy_base_volume": None, "taker_buy_quote_volume": None, "spread_bps": None}
>>> out = bytearray(); write(candle, out)
>>> reference = BytesIO(); schemaless_writer(reference, schema, candle)
>>> bytes(out) == reference.getvalue()
True
>>> write({**candle, "trades": 7.5}, bytearray())
Traceback (most recent call last):
...
schemas.fast_writer.NotPlain: not a plain long
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

__all__ = ["NotPlain", "Writer", "compile_writer"]

Writer = Callable[[Any, bytearray], None]


class NotPlain(Exception):
    """The value is not the plain case: encode the record the general way."""


_pack_double = struct.Struct("<d").pack
_pack_float = struct.Struct("<f").pack
_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_SMALL = [bytes([n]) for n in range(128)]  # one-byte varints


def _varint(out: bytearray, n: int) -> None:
    """Append the zig-zag varint of ``n`` (Avro's int and long)."""
    z = n << 1 if n >= 0 else ((-n) << 1) - 1
    if z < 128:
        out += _SMALL[z]
        return
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _integral(kind: str) -> Writer:
    low, high = _INT_RANGES[kind]

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not int or not low <= value <= high:
            raise NotPlain(f"not a plain {kind}")
        _varint(out, value)

    return write


def _real(kind: str) -> Writer:
    pack = _pack_double if kind == "double" else _pack_float

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not float and type(value) is not int:
            raise NotPlain(f"not a plain {kind}")
        out += pack(value)

    return write


def _boolean(value: Any, out: bytearray) -> None:
    if type(value) is not bool:
        raise NotPlain("not a plain boolean")
    out.append(1 if value else 0)


def _null(value: Any, out: bytearray) -> None:
    if value is not None:
        raise NotPlain("not null")


def _string(value: Any, out: bytearray) -> None:
    if type(value) is not str:
        raise NotPlain("not a plain string")
    data = value.encode("utf-8")
    _varint(out, len(data))
    out += data


def _enum(symbols: list[str]) -> Writer:
    encoded = {}
    for i, symbol in enumerate(symbols):  # each symbol's index as its varint, once
        _varint(index := bytearray(), i)
        encoded[symbol] = bytes(index)

    def write(value: Any, out: bytearray) -> None:
        data = encoded.get(value) if type(value) is str else None
        if data is None:
            raise NotPlain("not one of the enum's symbols")
        out += data

    return write


_PLAIN_REALS = frozenset({float, int})


def _array(items: Writer, of_doubles: bool) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if type(value) is not list:
            raise NotPlain("not a plain list")
        n = len(value)
        if n:
            _varint(out, n)
            if of_doubles:  # a feature vector: one pack for all its items, after one C-level type pass
                if not set(map(type, value)) <= _PLAIN_REALS:
                    raise NotPlain("not a list of plain numbers")
                out += struct.pack(f"<{n}d", *value)
            else:
                for item in value:
                    items(item, out)
        out.append(0)

    return write


def _map(values: Writer) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if type(value) is not dict:
            raise NotPlain("not a plain dict")
        if value:
            _varint(out, len(value))
            for key, item in value.items():
                _string(key, out)
                values(item, out)
        out.append(0)

    return write


def _nullable(null_index: int, branch: Writer) -> Writer:
    null_byte, value_byte = _SMALL[null_index << 1], _SMALL[(1 - null_index) << 1]

    def write(value: Any, out: bytearray) -> None:
        if value is None:
            out += null_byte
        else:
            out += value_byte
            branch(value, out)

    return write


def _record(fields: list[tuple[str, Writer]]) -> Writer:
    count = len(fields)

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not dict or len(value) != count:
            raise NotPlain("not a dict of exactly the record's fields")  # a default to fill, or an extra key
        try:
            for name, field in fields:
                field(value[name], out)
        except KeyError:
            raise NotPlain("a field is missing") from None

    return write


class _Unsupported(Exception):
    pass


def _compile(schema: Any, named: dict[str, Any], open_names: set[str]) -> Writer:
    if isinstance(schema, list):  # a union
        if len(schema) != 2 or "null" not in schema:
            raise _Unsupported("union")
        null_index = schema.index("null")
        return _nullable(null_index, _compile(schema[1 - null_index], named, open_names))
    if isinstance(schema, str):
        if schema in named:
            if schema in open_names:
                raise _Unsupported("recursive")
            return _compile(named[schema], named, open_names)
        kind: Any = schema
        schema = {"type": schema}
    else:
        kind = schema.get("type")
        if isinstance(kind, (dict, list)):
            return _compile(kind, named, open_names)
    if kind in ("int", "long"):
        return _integral(kind)
    if kind in ("double", "float"):
        return _real(kind)
    if kind == "boolean":
        return _boolean
    if kind == "string":
        return _string
    if kind == "null":
        return _null
    if kind == "enum":
        named[schema["name"]] = schema
        return _enum(list(schema["symbols"]))
    if kind == "array":
        items = schema["items"]
        return _array(_compile(items, named, open_names), items == "double")
    if kind == "map":
        return _map(_compile(schema["values"], named, open_names))
    if kind in ("record", "error"):
        name = schema["name"]
        named[name] = schema
        open_names.add(name)
        fields = [(f["name"], _compile(f["type"], named, open_names)) for f in schema["fields"]]
        open_names.discard(name)
        return _record(fields)
    raise _Unsupported(str(kind))


def compile_writer(schema: dict[str, Any]) -> Writer | None:
    """A writer of ``schema`` (a parsed schema, named types by full name) or None if it has a construct
    this module leaves to fastavro."""
    try:
        return _compile(schema, {}, set())
    except _Unsupported:
        return None
