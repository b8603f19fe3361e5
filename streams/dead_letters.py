"""Dead-letter records: what could not be used, why, and where it came from.

>>> from streams.errors import DecodeError
>>> r = dead_letter_record(DecodeError("magic byte 7, expected 0"), "candleflow.candles.5m", 2, 41, b"ETH-BTC", b"\\x07", now_ms=1)
>>> r["reason"], r["error_type"], r["partition"], r["offset"]
('magic byte 7, expected 0', 'decode', 2, 41)
"""

from __future__ import annotations

import time
from typing import Any

from streams.errors import InvalidInput

__all__ = ["dead_letter_record", "MAX_DEAD_PAYLOAD"]

# A hostile multi-megabyte message should not be copied whole into a second topic.
MAX_DEAD_PAYLOAD = 64 * 1024


def dead_letter_record(error: InvalidInput, topic: str, partition: int, offset: int,
                       key: bytes | None, payload: bytes | None, now_ms: int | None = None) -> dict[str, Any]:
    """The DeadLetter Avro record (schemas/dead_letter.avsc) for a message rejected with ``error``."""
    return {
        "reason": str(error) or type(error).__name__,
        "error_type": getattr(error, "kind", "validation"),
        "source_topic": topic,
        "partition": int(partition),
        "offset": int(offset),
        "key": bytes(key[:1024]) if key is not None else None,
        "payload": bytes(payload[:MAX_DEAD_PAYLOAD]) if payload is not None else b"",
        "failed_at": int(time.time() * 1000) if now_ms is None else now_ms,
    }
