"""Type checks that fastavro's writer skips, compiled once per schema into plain functions.

fastavro coerces a record field with ``float()``/C casts, so ``"1.5"`` becomes a double, ``1.5``
silently becomes the long ``1`` and an int field takes values past 32 bits. A producer bug like a
float timestamp must fail at encode time, not corrupt the topic, so numbers and booleans are
checked here, and so are arrays (fastavro takes a string or a dict as an
array). Strings, enums and unions fastavro already checks, so they cost nothing extra.

>>> check = compile_checks({"type": "record", "name": "T", "fields": [{"name": "n", "type": "long"}]})
>>> check({"n": 3})
>>> check({"n": 1.5})
Traceback (most recent call last):
...
TypeError: T.n: expected long, got float 1.5
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["compile_checks"]

Check = Callable[[Any], None]

_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _fail(path: str, expected: str, value: Any) -> None:
    raise TypeError(f"{path}: expected {expected}, got {type(value).__name__} {value!r:.40}")


def _real(path: str, expected: str) -> Check:
    def check(value: Any) -> None:
        kind = type(value)
        # The exact-type test is the hot path; the ABC test admits numpy scalars.
        if kind is not float and kind is not int and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            _fail(path, expected, value)

    check.plain_types = _PLAIN_REALS  # type: ignore[attr-defined]  # what always passes (see _array)
    return check


def _integral(path: str, expected: str) -> Check:
    low, high = _INT_RANGES[expected]

    def check(value: Any) -> None:
        if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            _fail(path, expected, value)
        if not low <= value <= high:
            raise ValueError(f"{path}: {value} is out of range for Avro {expected}")

    return check


def _boolean(path: str) -> Check:
    def check(value: Any) -> None:
        kind = type(value)
        # numpy's bool (bool_ before numpy 2) is no subclass of bool, but is a boolean all the same.
        if kind is not bool and not (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):
            _fail(path, "boolean", value)

    return check


def _record(path: str, schema: dict[str, Any]) -> Check | None:
    fields = []
    for field in schema["fields"]:
        check = _compile(field["type"], f"{path}.{field['name']}")
        if check is not None:
            fields.append((field["name"], check))
    if not fields:
        return None

    def check(value: Any) -> None:
        if isinstance(value, Mapping):  # anything else fastavro rejects itself
            for name, check_field in fields:
                if name in value:  # a missing field is fastavro's strict_allow_default to judge
                    check_field(value[name])

    return check


_PLAIN_REALS = frozenset({float, int})


def _array(path: str, items: Check | None) -> Check:
    # An array of doubles (a feature vector) is all plain floats nearly always: one C-level pass over
    # the item types instead of a Python call per item (a prediction's 41 features cost ~6 us that way).
    reals = getattr(items, "plain_types", None)

    def check(value: Any) -> None:
        # fastavro takes any iterable, so "" or {} would pass as an empty array; numpy arrays may.
        if isinstance(value, (str, bytes, bytearray, Mapping)):
            _fail(path, "array", value)
        if items is not None:
            if reals is not None and type(value) is list and set(map(type, value)) <= reals:
                return
            for item in value:
                items(item)

    return check


def _map(path: str, values: Check | None) -> Check:
    def check(value: Any) -> None:
        # fastavro writes any sized thing as a map ("" becomes an empty map): only a mapping is one.
        if not isinstance(value, Mapping):
            _fail(path, "map", value)
        if values is not None:
            for item in value.values():
                values(item)

    return check


def _compile(schema: Any, path: str) -> Check | None:
    kind = schema.get("type") if isinstance(schema, dict) else schema
    if kind in ("double", "float"):
        return _real(path, kind)
    if kind in ("int", "long"):
        return _integral(path, kind)
    if kind == "boolean":
        return _boolean(path)
    if kind in ("record", "error"):
        return _record(path, schema)
    if kind == "array":
        return _array(path, _compile(schema["items"], f"{path}[]"))
    if kind == "map":
        return _map(path, _compile(schema["values"], f"{path}{{}}"))
    # Unions pick their branch by validating the value, named references were checked where
    # defined, and strings, bytes, enums and fixed are checked by the writer.
    return None


def compile_checks(schema: dict[str, Any]) -> Check:
    """One function that raises TypeError/ValueError where ``schema``'s numbers or booleans are wrong."""
    check = _compile(schema, schema["name"].rpartition(".")[2])
    return check or (lambda value: None)
