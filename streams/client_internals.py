"""The one place that touches private parts of Faust (besides the transport subclass,
``streams/faust_transport.py``; aiokafka's: ``kafka_io/client_internals.py``): an upgrade that moves them
breaks here, and only here.

- Faust routes a table write to the changelog partition of the *current event* (a context variable
  set while an agent handles an event): code that writes tables outside that flow (the checkpoint, the
  aggregation agent) sets it itself, and clears it before a read, because with a current event the
  RocksDB store looks only in that event's partition.
- The last offset Faust's consumer has handed to an agent, per partition (for the lag in ``/stats``).
- The aiokafka producer inside Faust's, for :func:`send_now`.
- The offset Faust's consumer holds as committed per partition (the next to process; where an assigned
  partition starts).
- Where Faust's table recovery stands, and a way to make it read its changelogs again (through Faust's own
  seek, which also forgets the read offset below which Faust's consumer drops records), or rejoin the group
  (through the consumer's own thread, where aiokafka runs): for the recovery watch (``agents/recovery.py``).
"""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event

from kafka_io.client_internals import fetch_position, request_rejoin, send_open_batches

__all__ = ["clear_current_event", "committed_offset", "last_read_offset", "pause_when_resumed", "read_changelogs_again",
           "recovery_diagnostics", "recovery_pending", "recovery_progress", "rejoin_group", "send_now",
           "set_current_event"]


def set_current_event(event: Any) -> None:
    """Make ``event`` Faust's current event, so a table write lands on its partition's changelog."""
    _current_event.set(weakref.ref(event))


def clear_current_event() -> None:
    """No current event: a table read looks in every partition this worker holds."""
    _current_event.set(None)


def last_read_offset(faust_consumer: Any, tp: Any) -> int | None:
    """The last offset of ``tp`` Faust's consumer has delivered to the agents (None before the first)."""
    return faust_consumer._read_offset.get(tp)


def committed_offset(faust_consumer: Any, tp: Any) -> int | None:
    """The next offset of ``tp`` Faust's consumer has committed or sought to (None while it does not know)."""
    return faust_consumer._committed_offset.get(tp)


def send_now(faust_producer: Any) -> None:
    """What Faust's producer holds goes to the broker in the next request, not after the linger."""
    producer = faust_producer._producer
    if producer is not None:
        send_open_batches(producer)


def recovery_progress(app: Any) -> int | None:
    """How far Faust's table recovery has read (the sum of the offsets it reached on its partitions), or None
    when no recovery runs."""
    recovery = app.tables.recovery
    if not recovery.in_recovery:
        return None
    return sum(offset for offset in recovery.active_offsets.values() if offset is not None)


def recovery_pending(app: Any) -> dict[Any, int]:
    """The changelog partitions the running recovery has yet to read up to their high-water mark, each with
    the next offset it needs."""
    recovery = app.tables.recovery
    return {tp: (-1 if recovery.active_offsets[tp] is None else recovery.active_offsets[tp]) + 1
            for tp, left in recovery.active_remaining().items() if left > 0}


async def read_changelogs_again(app: Any, pending: dict[Any, int]) -> None:
    """Seek each of ``pending``'s partitions to its offset through Faust (aiokafka's position, and Faust's
    read offset, which would drop every record below an older one), resume them and the flow."""
    consumer = app.consumer
    for tp, offset in pending.items():
        await consumer.seek(tp, offset)
    consumer.resume_partitions(set(pending))
    app.flow_control.resume()
    consumer.resume_flow()


async def rejoin_group(app: Any) -> None:
    """Ask the group for a new rebalance: Faust revokes and assigns again, and starts its table recovery anew."""
    thread = app.consumer._thread
    await thread.call_thread(request_rejoin, thread._ensure_consumer())


def pause_when_resumed(faust_consumer: Any, topics: set[str], times: int = 1) -> None:
    """The first ``times`` times Faust's consumer resumes partitions of ``topics``, they are paused again at once:
    it hands over none of their records until they are resumed once more. Failure tests only."""
    original = faust_consumer.resume_partitions
    left = times

    def resume_partitions(tps: Any) -> None:
        nonlocal left
        original(tps)
        hit = {tp for tp in tps if tp.topic in topics}
        if hit:
            left -= 1
            if left <= 0:
                faust_consumer.resume_partitions = original
            faust_consumer.pause_partitions(hit)

    faust_consumer.resume_partitions = resume_partitions


def recovery_diagnostics(app: Any, pending: dict[Any, int]) -> str:
    """One line per pending partition: what Faust's consumer and aiokafka's fetcher hold for it (never raises)."""
    consumer = app.consumer
    lines = [f"flow_active={getattr(consumer, 'flow_active', '?')} "
             f"changelog_queue={_safely(lambda: app.tables.changelog_queue.qsize())}"]
    for tp, offset in pending.items():
        position, highwater = _safely(lambda: fetch_position(consumer._thread._ensure_consumer(), tp)) or ("?", "?")
        lines.append(f"{tp.topic}[{tp.partition}] needs {offset}: read_offset={_safely(lambda: consumer._read_offset.get(tp))} "
                     f"active={_safely(lambda: tp in consumer._active_partitions)} "
                     f"paused={_safely(lambda: tp in consumer._paused_partitions)} position={position} highwater={highwater}")
    return "\n".join(lines)


def _safely(read: Any) -> Any:
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - a diagnostic: whatever it could not read is shown as such
        return f"<{type(exc).__name__}>"
