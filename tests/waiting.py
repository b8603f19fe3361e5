"""Waiting on conditions, never on fixed sleeps: the tests' one way to let a real broker catch up."""

from __future__ import annotations

import time
from typing import Any, Callable

__all__ = ["wait_for"]


def wait_for(condition: Callable[[], Any], timeout_s: float = 90.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy (which is returned); AssertionError on time-out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not met within {timeout_s:.0f} s")
