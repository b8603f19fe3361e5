"""Candle messages to candles: decode a Candle or CandleBatch message and validate each candle.

A message that cannot be decoded raises :class:`~core.errors.DecodeError`; inside a message that
decodes, each invalid candle becomes an :class:`~core.errors.InvalidInput` in the result, so one
bad candle in a batch does not cost the others. A message larger than ``max_bytes`` is refused before
decoding (1 MiB by default, Kafka's own default ``message.max.bytes``): 5,000 candles fit in ~0.4 MiB.

>>> from schemas import LocalSchemaStore, MultiCodec
>>> decode_candle_message(MultiCodec(["Candle", "CandleBatch"], LocalSchemaStore()), b"x" * 2000, max_bytes=1024)
Traceback (most recent call last):
...
core.errors.DecodeError: message of 2000 bytes exceeds the 1024-byte limit (CANDLEFLOW_MAX_MESSAGE_BYTES)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

from core.candle import Candle, candle_from_record
from core.errors import DecodeError, InvalidInput
from core.settings import MAX_MESSAGE_BYTES

__all__ = ["MAX_MESSAGE_BYTES", "TAKE_GROUP_BYTES", "decode_candle_message", "misrouted", "groups_by_bytes"]

# A take of candle messages is handled in groups of about this many bytes (~2,000 candles of Avro): between
# groups a checkpoint can run, so a flood of new symbols never holds more than a group beyond the live bound.
TAKE_GROUP_BYTES = 128 * 1024



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


def misrouted(candle: Candle, partition: int, partition_of: Callable[[str], int]) -> InvalidInput | None:
    """The reason a candle read from ``partition`` is not scored there, or None: a series lives on the
    partition its symbol's key maps to (``partition_of``, Kafka's default partitioner), so a candle
    keyed by anything else (or a CandleBatch mixing partitions) would split its state between workers.

    >>> from streams.partitioning import KeyPartitioner
    >>> c = Candle("ETH-BTC", "5m", 0, 1.0, 1.0, 1.0, 1.0, 1.0)
    >>> of = KeyPartitioner(4)
    >>> misrouted(c, of("ETH-BTC"), of) is None, "belongs on partition" in str(misrouted(c, (of("ETH-BTC") + 1) % 4, of))
    (True, True)
    """
    home = partition_of(candle.symbol)
    if home == partition:
        return None
    return InvalidInput(f"{candle.symbol} belongs on partition {home} (keyed by its symbol), not {partition}: "
                        "produce candles with key = symbol")


def groups_by_bytes(sizes: Sequence[int], budget: int = TAKE_GROUP_BYTES) -> list[slice]:
    """Consecutive groups of items whose ``sizes`` add up to at most ``budget`` (an item alone may exceed it).

    >>> groups_by_bytes([100, 100, 300, 50, 50, 50], budget=250)
    [slice(0, 2, None), slice(2, 3, None), slice(3, 6, None)]
    >>> groups_by_bytes([])
    []
    """
    groups, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > budget:
            groups.append(slice(start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        groups.append(slice(start, len(sizes)))
    return groups
