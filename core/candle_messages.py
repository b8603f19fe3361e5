"""Candle messages to candles: decode a Candle or CandleBatch message and validate each candle (in ``core/``:
the stream, replay, the sinks and training's ``training/topic_data.py`` decode alike).

A message that cannot be decoded raises :class:`~core.errors.DecodeError`; inside a message that
decodes, each invalid candle becomes an :class:`~core.errors.InvalidInput` in the result, so one
bad candle in a batch does not cost the others. A message larger than ``max_bytes`` is refused before
decoding (1 MiB by default, Kafka's own default ``message.max.bytes``): 5,000 candles fit in ~0.4 MiB.
The codec is any object with ``decode(payload) -> (schema name, record)`` (``schemas.MultiCodec``).

>>> decode_candle_message(None, b"x" * 2000, max_bytes=1024)
Traceback (most recent call last):
...
core.errors.DecodeError: message of 2000 bytes exceeds the 1024-byte limit (CANDLEFLOW_MAX_MESSAGE_BYTES)
"""

from __future__ import annotations

from typing import Any

from core.candle import Candle, candle_from_record
from core.errors import DecodeError, InvalidInput
from core.settings import MAX_MESSAGE_BYTES

__all__ = ["MAX_MESSAGE_BYTES", "decode_candle_message"]


def decode_candle_message(codec: Any, payload: bytes | None, expected_timeframe: str | None = None,
                          max_bytes: int = MAX_MESSAGE_BYTES, latest_open_time: int | None = None) -> list[Candle | InvalidInput]:
    """Decode with ``codec`` (a ``schemas.MultiCodec`` of Candle and CandleBatch) and validate.

    ``latest_open_time`` (epoch ms; the worker passes now plus ``CANDLEFLOW_MAX_CLOCK_SKEW_S``): a candle
    that opens later is refused. Accepted, one future-dated candle would move its series past every real
    candle to come (each then refused as out of order)."""
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
            if latest_open_time is not None and candle.open_time > latest_open_time:
                raise InvalidInput(f"open_time {candle.open_time} is in the future: later than {latest_open_time}, "
                                   "this worker's clock plus CANDLEFLOW_MAX_CLOCK_SKEW_S")
            out.append(candle)
        except InvalidInput as exc:
            out.append(exc)
    return out
