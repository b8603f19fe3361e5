"""Sealed state: an HMAC-SHA256 over a learner's table value, checked before anything in it is unpickled.

The learners hold River objects, which persist only by pickling, and unpickling runs code. Their table
values travel through a changelog topic, so anything that can produce to that topic could otherwise run
code in every worker that restores from it. A sealed blob carries a MAC under the deployment's key
(``CANDLEFLOW_STATE_KEY``); a blob whose MAC does not verify — tampered, written under another key, or
not sealed at all — is refused with :class:`~core.errors.DecodeError` before it is read, and the worker
starts that learner afresh (``agents/table_cache.py`` logs it).

>>> key = b"k" * 32
>>> unseal(seal(b"state", key), key)
b'state'
>>> unseal(seal(b"state", key)[:-1] + b"!", key)
Traceback (most recent call last):
...
core.errors.DecodeError: sealed state: the signature does not verify (tampered, or written under another CANDLEFLOW_STATE_KEY)
"""

from __future__ import annotations

import hashlib
import hmac

from core.errors import DecodeError

__all__ = ["seal", "unseal"]

_MAGIC = b"CFSL"
_MAC = 32  # bytes of an HMAC-SHA256


def seal(blob: bytes, key: bytes) -> bytes:
    """``blob`` with its MAC under ``key`` in front."""
    return _MAGIC + hmac.new(key, blob, hashlib.sha256).digest() + blob


def unseal(sealed: bytes, key: bytes) -> bytes:
    """The blob :func:`seal` sealed under ``key``; DecodeError when it is not sealed or does not verify."""
    if not isinstance(sealed, (bytes, bytearray)) or sealed[:4] != _MAGIC or len(sealed) < 4 + _MAC:
        raise DecodeError("sealed state: not sealed (written before state signing, or not by a worker)")
    mac, blob = bytes(sealed[4:4 + _MAC]), bytes(sealed[4 + _MAC:])
    if not hmac.compare_digest(mac, hmac.new(key, blob, hashlib.sha256).digest()):
        raise DecodeError("sealed state: the signature does not verify (tampered, or written under another "
                          "CANDLEFLOW_STATE_KEY)")
    return blob
