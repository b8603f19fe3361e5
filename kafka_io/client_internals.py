"""The one place that touches private parts of aiokafka (Faust's: ``streams/client_internals.py``): an upgrade
that moves them breaks here, and only here.

- aiokafka's consumer knows the partitions of a topic only once its client has fetched metadata for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["refresh_metadata"]


async def refresh_metadata(consumer: Any) -> None:
    """Ask the broker for the metadata of every topic (a fresh aiokafka client may not have a topic's yet)."""
    await consumer._client.force_metadata_update()
