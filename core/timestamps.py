"""ISO-8601 times and epoch milliseconds, the one place they are converted (replay ranges, evaluation
cut-offs, registry times); in ``core/`` because it imports nothing but core and both streams and training use it.

>>> parse_time("2018-01-10T05:35:00Z"), parse_time("2018-01-10")
(1515562500000, 1515542400000)
>>> format_time(1515562500000)
'2018-01-10T05:35:00Z'
"""

from __future__ import annotations

from datetime import datetime, timezone

from core.errors import ConfigError

__all__ = ["format_time", "parse_time"]


def parse_time(text: str) -> int:
    """ISO-8601 time (UTC unless it says otherwise) to epoch milliseconds; ConfigError if it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def format_time(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
