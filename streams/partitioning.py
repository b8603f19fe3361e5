"""Which partition a symbol's key goes to: Kafka's default partitioner (murmur2, as the Java client and
aiokafka compute it), so a batch record sent to an explicit partition lands where its symbols' own
keyed records (signals, candles produced by ``candleflow produce``) land.

>>> partition_of = KeyPartitioner(4)
>>> partition_of("ETH-BTC") == partition_of("ETH-BTC"), 0 <= partition_of("LTC-BTC") < 4
(True, True)
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

__all__ = ["KeyPartitioner"]


class KeyPartitioner:
    """``partition_of(symbol)`` for topics of ``partitions`` partitions, cached per symbol."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._cache: dict[str, int] = {}

    def __call__(self, symbol: str) -> int:
        partition = self._cache.get(symbol)
        if partition is None:
            if len(self._cache) > 100_000:  # bounded: a flood of distinct symbols must not grow it forever
                self._cache.clear()
            partition = self._cache[symbol] = (murmur2(symbol.encode()) & 0x7FFFFFFF) % self.partitions
        return partition
