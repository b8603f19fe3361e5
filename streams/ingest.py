"""Candle messages to candles: decode a Candle or CandleBatch message and validate each candle.

A message that cannot be decoded raises :class:`~streams.errors.DecodeError`; inside a message that
decodes, each invalid candle becomes an :class:`~streams.errors.InvalidInput` in the result, so one
bad candle in a batch does not cost the others.
"""

from __future__ import annotations

from typing import Any

from streams.candle import Candle, candle_from_record
from streams.errors import DecodeError, InvalidInput

__all__ = ["decode_candle_message"]


def decode_candle_message(codec: Any, payload: bytes | None, expected_timeframe: str | None = None) -> list[Candle | InvalidInput]:
    """Decode with ``codec`` (a ``schemas.MultiCodec`` of Candle and CandleBatch) and validate."""
    if not payload:
        raise DecodeError("empty message (no value)")
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
