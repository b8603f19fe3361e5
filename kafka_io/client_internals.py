"""The one place that touches private parts of aiokafka (Faust's: ``streams/client_internals.py``): an upgrade
that moves them breaks here, and only here.

- aiokafka's consumer knows the partitions of a topic only once its client has fetched metadata for it.
- Where aiokafka's fetcher stands on a partition (position, high-water mark), for diagnostics.
- aiokafka's consumer rejoins its group (a new rebalance) only when the coordinator says so; its group
  coordinator can be asked directly (:func:`request_rejoin`).
- aiokafka's producer has no "send what you hold now" short of ``flush()``, which also waits for delivery:
  :func:`send_open_batches` ends the linger of the batches it holds and wakes its sender, without
  waiting. (Closing them, as its transaction commit does, would make the next send to a partition wait
  until its closed batch is drained: behind a request in flight.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["fetch_position", "refresh_metadata", "request_rejoin", "send_open_batches"]


async def refresh_metadata(consumer: Any) -> None:
    """Ask the broker for the metadata of every topic (a fresh aiokafka client may not have a topic's yet)."""
    await consumer._client.force_metadata_update()


def send_open_batches(producer: Any) -> None:
    """Let every batch ``producer`` (an ``AIOKafkaProducer``) holds go in its sender's next request,
    without waiting out the linger (sends before that request still join them). Returns at once."""
    accumulator = producer._message_accumulator
    for batches in accumulator._batches.values():
        for batch in batches:
            batch._linger_time = 0  # ready to drain: MessageBatch.remaining_linger() is None from now
    waiter = accumulator._waiter_future
    if not waiter.done():
        waiter.set_result(None)


async def request_rejoin(consumer: Any) -> None:
    """Make ``consumer`` (an ``AIOKafkaConsumer`` in a group) rejoin its group: every member's partitions are
    revoked and assigned again. Call it on the consumer's own event loop."""
    consumer._coordinator.request_rejoin()


def fetch_position(consumer: Any, tp: Any) -> tuple[Any, Any]:
    """(position, high-water mark) aiokafka's fetcher holds for partition ``tp`` of ``consumer``, either None
    when it does not know. Raises if ``tp`` is not assigned."""
    from aiokafka import TopicPartition

    state = consumer._fetcher._subscriptions.subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition))
    return getattr(state, "position", None), getattr(state, "highwater", None)
