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
"""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event

from kafka_io.client_internals import send_open_batches

__all__ = ["clear_current_event", "committed_offset", "last_read_offset", "send_now", "set_current_event"]


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
