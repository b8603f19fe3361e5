"""The Confluent wire format's frame: magic byte 0, then the schema id as a 4-byte big-endian int.

>>> frame(42)
b'\\x00\\x00\\x00\\x00*'
>>> schema_id_of(frame(42) + b"body")
42
"""

from __future__ import annotations

import struct

from core.errors import DecodeError

__all__ = ["HEADER_SIZE", "MAGIC", "frame", "schema_id_of"]

MAGIC = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size


def frame(schema_id: int) -> bytes:
    """The 5 bytes that precede every Avro body written with ``schema_id``."""
    return _HEADER.pack(MAGIC, schema_id)


def schema_id_of(data: object) -> int:
    """The schema id in ``data``'s frame; :class:`DecodeError` if ``data`` is not framed bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) < HEADER_SIZE:
        raise DecodeError(f"message of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError(f"magic byte is {magic & 0xFF}, expected {MAGIC}: not Confluent Avro framing")
    return schema_id
