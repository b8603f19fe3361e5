"""A take of candle messages, before and after decoding (:mod:`core.candle_messages`): split into groups
of about :data:`TAKE_GROUP_BYTES`, and the candles read off a partition that is not their symbol's refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

from core.candle import Candle
from core.errors import InvalidInput

__all__ = ["TAKE_GROUP_BYTES", "misrouted", "groups_by_bytes"]

# A take of candle messages is handled in groups of about this many bytes (~2,000 candles of Avro): between
# groups a checkpoint can run, so a flood of new symbols never holds more than a group beyond the live bound.
TAKE_GROUP_BYTES = 128 * 1024


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
