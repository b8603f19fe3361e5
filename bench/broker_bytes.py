"""Where a broker's bytes go: records and key+value bytes per topic, read back from the beginning.

The soak uses it to show which topics grow (the embedded broker keeps every record in memory).

>>> summarise({"a": (10, 1000), "b": (5, 3000)})
[('b', 5, 3000, 600.0, 0.75), ('a', 10, 1000, 100.0, 0.25)]
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["topic_bytes", "summarise"]


async def topic_bytes(bootstrap: str, prefixes: tuple[str, ...] = ("",), idle_s: float = 3.0,
                      budget_s: float = 120.0, match=None) -> dict[str, tuple[int, int]]:
    """topic -> (records, key+value bytes) for every topic whose name starts with one of ``prefixes``
    (or, given ``match``, for which ``match(name)`` is true).

    Reads until no record arrives for ``idle_s`` seconds or ``budget_s`` have passed (a partial
    count then, which is still the shape of it).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=100, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    counts: dict[str, list[int]] = {}
    try:
        topics = sorted(t for t in await consumer.topics() if (match(t) if match is not None else t.startswith(prefixes)))
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return {}
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        counts = {t: [0, 0] for t in topics}
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=10_000)
            if not batch:
                break
            for tp, messages in batch.items():
                entry = counts[tp.topic]
                entry[0] += len(messages)
                entry[1] += sum(len(m.key or b"") + len(m.value or b"") for m in messages)
    finally:
        await consumer.stop()
    return {t: (n, size) for t, (n, size) in counts.items()}


def summarise(counts: dict[str, tuple[int, int]]) -> list[tuple[str, int, int, float, float]]:
    """(topic, records, bytes, bytes per record, share of all bytes), largest first."""
    total = sum(size for _, size in counts.values()) or 1
    rows = [(t, n, size, round(size / n, 1) if n else 0.0, round(size / total, 3)) for t, (n, size) in counts.items()]
    return sorted(rows, key=lambda r: -r[2])
