"""Which candles of a topic a replay emits: a range of offsets, of candle open times, or of message times.

A backtest means candle time: ``--from-time 2018-01-25T00:00Z --to-time 2018-01-26T00:00Z`` is the
candles that *opened* on January 25th, whenever they were produced. Kafka can only seek by message
time, so by candle time each partition is read from a lower bound — the first message stamped at or
after ``from_time - max_clock_skew`` (a candle is never produced before it opens, give or take the skew a
worker accepts) — up to its end, and every candle is kept or not by its own open time. That is exact
when candles were produced late (a history file produced today) or out of wall-clock order.

``by="message_time"`` keeps the old meaning (``--by-message-time``): offsets from the message times;
``by="offset"``: offsets as given. A start past the end of a partition (a time after its last message)
selects nothing there, never "everything".

>>> w = ReplayWindow("candle_time", start={0: 7}, end={0: None}, from_time=1_000, to_time=2_000)
>>> [w.emits(0, 5, t) for t in (999, 1_000, 1_999, 2_000)]
[False, True, True, False]
>>> w.before(0, 9, 999), w.holds(0, 6), w.holds(0, 7)
(True, False, True)
>>> ReplayWindow("offset", start={0: 3}, end={0: 5}).emits(0, 4, 0), ReplayWindow("offset", {0: None}, {0: None}).emits(0, 4, 0)
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_io.client_internals import refresh_metadata
from kafka_io.consumer import offsets_at_time
from core.errors import ConfigError

__all__ = ["BY", "ReplayWindow", "resolve_window"]

BY = ("offset", "candle_time", "message_time")


@dataclass(frozen=True)
class ReplayWindow:
    """What a replay emits. ``start``/``end``: offsets per partition, ``[start, end)``; a start of None
    selects nothing in that partition, an end of None reads to its end. By candle time
    ``[from_time, to_time)`` alone decides, and ``start`` is only where a cold replay begins reading
    (the lower bound; None: no message there is recent enough to hold a candle of the range)."""

    by: str
    start: dict[int, int | None]
    end: dict[int, int | None]
    from_time: int | None = None
    to_time: int | None = None

    def emits(self, partition: int, offset: int, open_time: int) -> bool:
        """True when the candle at ``offset`` of ``partition`` that opens at ``open_time`` is in the range."""
        if self.by == "candle_time":  # by its own time alone: a warm-up reads every message anyway
            return (self.from_time is None or open_time >= self.from_time) and (self.to_time is None or open_time < self.to_time)
        return self.holds(partition, offset)

    def holds(self, partition: int, offset: int) -> bool:
        """True when the message at ``offset`` is within the range's offsets (by candle time: from the lower
        bound on) — where a refused message counts as the range's dead letter (it has no open time)."""
        start, end = self.start[partition], self.end[partition]
        return start is not None and offset >= start and (end is None or offset < end)

    def before(self, partition: int, offset: int, open_time: int) -> bool:
        """True when the candle lies before the range (what a warm-up feeds; a cold replay skips it)."""
        if self.by == "candle_time":
            return self.from_time is not None and open_time < self.from_time
        start = self.start[partition]
        return start is None or offset < start


async def resolve_window(consumer: AIOKafkaConsumer, topic: str, by: str, from_offset: int | None = None,
                         to_offset: int | None = None, from_time: int | None = None, to_time: int | None = None,
                         max_skew_ms: int = 0) -> ReplayWindow:
    """The window of ``topic`` the arguments select (see the module docstring)."""
    if by not in BY:
        raise ConfigError(f"replay selects by one of {', '.join(BY)}, got {by!r}")
    ids = consumer.partitions_for_topic(topic)
    if not ids:
        await refresh_metadata(consumer)  # a fresh client may not have the topic's metadata yet
        ids = consumer.partitions_for_topic(topic)
    if not ids:
        raise ConfigError(f"topic {topic!r} does not exist")
    tps = [TopicPartition(topic, p) for p in sorted(ids)]

    async def first_at(ms: int) -> dict[int, int | None]:
        return {tp.partition: offset for tp, offset in (await offsets_at_time(consumer, tps, ms)).items()}

    if by == "offset":
        return ReplayWindow(by, {tp.partition: from_offset or 0 for tp in tps}, {tp.partition: to_offset for tp in tps})
    if by == "message_time":
        start = await first_at(from_time) if from_time is not None else {tp.partition: 0 for tp in tps}
        end = await first_at(to_time) if to_time is not None else {tp.partition: None for tp in tps}
        return ReplayWindow(by, start, end)
    start = await first_at(from_time - max_skew_ms) if from_time is not None else {tp.partition: 0 for tp in tps}
    return ReplayWindow(by, start, {tp.partition: None for tp in tps}, from_time, to_time)
