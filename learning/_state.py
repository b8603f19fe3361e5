"""Versioned JSON envelopes for the learning objects' state (Faust table values).

JSON rather than pickle for every object that is plain numbers and strings: a changelog value must
stay readable by the next release, and a blob of another kind or format version is refused with
:class:`~core.errors.DecodeError` instead of being misread. (The River model is the exception; see
:mod:`learning.online`.) Python's ``json`` writes NaN/Infinity tokens, which is what feature vectors
with warm-up NaNs need.

>>> load_state("demo", 1, dump_state("demo", 1, {"n": 3}))
{'n': 3}
>>> load_state("demo", 2, dump_state("demo", 1, {"n": 3}))
Traceback (most recent call last):
...
core.errors.DecodeError: demo state: format 1, expected 2
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import DecodeError

__all__ = ["dump_pickle", "dump_state", "load_pickle", "load_state"]


def dump_state(kind: str, version: int, payload: dict[str, Any]) -> bytes:
    return json.dumps({"kind": kind, "format": version, "state": payload}, separators=(",", ":")).encode("utf-8")


def load_state(kind: str, version: int, blob: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"{kind} state: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        found = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise DecodeError(f"{kind} state: blob holds {found!r}")
    if doc.get("format") != version:
        raise DecodeError(f"{kind} state: format {doc.get('format')}, expected {version}")
    return doc["state"]


_PICKLE_MAGIC = b"CFPK"


def dump_pickle(kind: str, version: int, obj: Any) -> bytes:
    """For state holding River objects, which River itself persists by pickling: a JSON header naming
    the kind, format and River version, then the pickle. Only for our own changelog topics: unpickling
    runs code, so such a blob must never come from outside."""
    import pickle

    import river

    header = json.dumps({"kind": kind, "format": version, "river": river.__version__}).encode("utf-8")
    return b"".join((_PICKLE_MAGIC, len(header).to_bytes(4, "little"), header, pickle.dumps(obj, protocol=5)))


def load_pickle(kind: str, version: int, blob: bytes) -> Any:
    """Inverse of :func:`dump_pickle`; DecodeError for another kind, format or River version (start cold)."""
    import pickle

    import river

    if blob[:4] != _PICKLE_MAGIC or len(blob) < 8:
        raise DecodeError(f"{kind} state: bad magic")
    n = int.from_bytes(blob[4:8], "little")
    try:
        header = json.loads(blob[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"{kind} state: bad header ({exc})") from None
    if header.get("kind") != kind or header.get("format") != version:
        raise DecodeError(f"{kind} state: blob holds {header.get('kind')!r} format {header.get('format')}")
    if header.get("river") != river.__version__:
        raise DecodeError(f"{kind} state: written by River {header.get('river')}, running {river.__version__}")
    return pickle.loads(blob[8 + n:])
