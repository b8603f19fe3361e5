"""One exception root; each branch carries the policy the pipeline applies to it.

- :class:`InvalidInput`: the message is unusable; it goes to the dead-letter topic with the reason.
- :class:`Retryable`: a dependency is down for now; back off and try again.
- :class:`ConfigError`: the process cannot run as configured; stop with a one-line message.
"""

__all__ = ["CandleflowError", "InvalidInput", "DecodeError", "OutOfOrder", "Retryable", "ConfigError"]


class CandleflowError(Exception):
    """Root of every error Candleflow raises on purpose."""


class InvalidInput(CandleflowError):
    """Bad input: dead-letter it with this message as the reason, keep going."""

    kind = "validation"


class DecodeError(InvalidInput):
    """Bytes that are not a message of the expected schema."""

    kind = "decode"


class OutOfOrder(InvalidInput):
    """A candle not newer than the last one seen for its symbol and timeframe (duplicate or late)."""

    kind = "out_of_order"


class Retryable(CandleflowError):
    """A dependency is unavailable for now: back off and retry."""


class ConfigError(CandleflowError):
    """Configuration or arguments that cannot work: report in one line and exit non-zero."""
