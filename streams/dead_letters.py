"""Dead-letter records: what could not be used, why, and where it came from.

>>> from core.errors import DecodeError
>>> r = dead_letter_record(DecodeError("magic byte 7, expected 0"), "candleflow.candles.5m", 2, 41, b"ETH-BTC", b"\\x07", now_ms=1)
>>> r["reason"], r["error_type"], r["partition"], r["offset"]
('magic byte 7, expected 0', 'decode', 2, 41)

One message, one dead letter, however many of its candles were refused: the reasons are listed once each
(with how many candles gave each, at most ``MAX_REASONS``), the payload copied once.

>>> from core.errors import InvalidInput
>>> errors = [InvalidInput("high 1 is below the candle's open")] * 3 + [InvalidInput("volume must not be negative")]
>>> combined(errors)
InvalidInput("4 candles refused: 3 x high 1 is below the candle's open; 1 x volume must not be negative")
"""

from __future__ import annotations

import time
from typing import Any

from core.errors import InvalidInput

__all__ = ["MAX_DEAD_PAYLOAD", "MAX_REASONS", "combined", "dead_letter_record"]

# A hostile multi-megabyte message should not be copied whole into a second topic.
MAX_DEAD_PAYLOAD = 64 * 1024
MAX_REASONS = 10  # distinct reasons listed in one message's dead letter
MAX_REASON_CHARS = 1000


def combined(errors: list[InvalidInput]) -> InvalidInput:
    """One error for every refused candle of one message (the first one itself when it is alone)."""
    if len(errors) == 1:
        return errors[0]
    counts: dict[str, int] = {}
    for error in errors:
        reason = str(error) or type(error).__name__
        counts[reason] = counts.get(reason, 0) + 1
    listed = "; ".join(f"{n} x {reason}" for reason, n in list(counts.items())[:MAX_REASONS])
    more = f"; and {len(counts) - MAX_REASONS} other reasons" if len(counts) > MAX_REASONS else ""
    error = InvalidInput(f"{len(errors)} candles refused: {listed}{more}"[:MAX_REASON_CHARS])
    error.kind = getattr(errors[0], "kind", "validation")
    return error


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
