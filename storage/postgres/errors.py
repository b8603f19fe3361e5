"""Map asyncpg / socket errors onto Candleflow's policy branches (``core.errors``).

- connection lost, server starting or shutting down, out of resources, serialisation failure
  -> :class:`Retryable` (back off; the same batch will go through later);
- a row the database refuses (bad value, violated check or not-null) -> :class:`InvalidInput`
  (dead-letter that row; the rest of the batch is fine);
- anything else (missing table, bad SQL, permissions) -> :class:`ConfigError` (retrying cannot help).

>>> import asyncpg
>>> type(classify(ConnectionRefusedError(111, "refused"))).__name__
'Retryable'
>>> type(classify(asyncpg.exceptions.CheckViolationError("bad direction"))).__name__
'InvalidInput'
>>> refused = classify(asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00"))
>>> type(refused).__name__, refused.kind, str(refused)[:40]
('InvalidInput', 'storage_refused', 'PostgreSQL refused the row (SQLSTATE 220')
>>> type(classify(asyncpg.exceptions.UndefinedTableError("no such table"))).__name__
'ConfigError'
"""

from __future__ import annotations

import asyncio

import asyncpg

from core.errors import CandleflowError, ConfigError, InvalidInput, Retryable

__all__ = ["classify"]

# SQLSTATE classes: 08 connection, 53 insufficient resources, 57 operator intervention (shutdown,
# cannot connect now), 40 transaction rollback (deadlock, serialisation), 58 system error (I/O).
_RETRY_CLASSES = {"08", "53", "57", "40", "58"}
# 22 data exception (out of range, bad text), 23 integrity constraint (not null, check, unique).
_INPUT_CLASSES = {"22", "23"}


def classify(exc: BaseException) -> CandleflowError:
    """The Candleflow error that says what to do about ``exc`` (with ``exc`` as its cause)."""
    if isinstance(exc, CandleflowError):
        return exc
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.exceptions.InterfaceError,
                        asyncpg.exceptions.ConnectionDoesNotExistError)):
        err: CandleflowError = Retryable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}")
    elif isinstance(exc, asyncpg.PostgresError):  # DataError too: a value the client cannot encode is class 22
        state = (getattr(exc, "sqlstate", None) or "")[:2]
        if state in _RETRY_CLASSES:
            err = Retryable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}")
        elif state in _INPUT_CLASSES:
            err = InvalidInput(f"PostgreSQL refused the row (SQLSTATE {exc.sqlstate}): {type(exc).__name__}: {exc}")
            err.kind = "storage_refused"  # the dead letter's error_type
        else:
            err = ConfigError(f"PostgreSQL: {type(exc).__name__}: {exc}")
    else:
        err = Retryable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err
