"""Candle messages to candles: decode a Candle or CandleBatch message and validate each candle.

A message that cannot be decoded raises :class:`~streams.errors.DecodeError`; inside a message that
decodes, each invalid candle becomes an :class:`~streams.errors.InvalidInput` in the result, so one
bad candle in a batch does not cost the others. A message larger than ``max_bytes`` is refused before
decoding (1 MiB by default, Kafka's own default ``message.max.bytes``): 5,000 candles fit in ~0.4 MiB.

>>> from schemas import LocalSchemaStore, MultiCodec
>>> decode_candle_message(MultiCodec(["Candle", "CandleBatch"], LocalSchemaStore()), b"x" * 2000, max_bytes=1024)
Traceback (most recent call last):
...
streams.errors.DecodeError: message of 2000 bytes exceeds the 1024-byte limit (CANDLEFLOW_MAX_MESSAGE_BYTES)
"""

from __future__ import annotations

from typing import Any

from streams.candle import Candle, candle_from_record
from streams.errors import DecodeError, InvalidInput

__all__ = ["MAX_MESSAGE_BYTES", "decode_candle_message"]

MAX_MESSAGE_BYTES = 1 << 20


def decode_candle_message(codec: Any, payload: bytes | None, expected_timeframe: str | None = None,
                          max_bytes: int = MAX_MESSAGE_BYTES) -> list[Candle | InvalidInput]:
    """Decode with ``codec`` (a ``schemas.MultiCodec`` of Candle and CandleBatch) and validate."""
    if not payload:
        raise DecodeError("empty message (no value)")
    if isinstance(payload, (bytes, bytearray, memoryview)) and len(payload) > max_bytes:  # other types: the codec says why
        raise DecodeError(f"message of {len(payload)} bytes exceeds the {max_bytes}-byte limit (CANDLEFLOW_MAX_MESSAGE_BYTES)")
    name, record = codec.decode(payload)
    records = record["candles"] if name == "CandleBatch" else [record]
    out: list[Candle | InvalidInput] = []
    for r in records:
        try:
            candle = candle_from_record(r)
            if expected_timeframe is not None and candle.timeframe != expected_timeframe:
                raise InvalidInput(f"a {candle.timeframe} candle on the {expected_timeframe} candle topic")
            out.append(candle)
        except InvalidInput as exc:
            out.append(exc)
    return out
