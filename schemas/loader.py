"""The ``.avsc`` files next to this module, loaded as self-contained schemas.

The files reference each other by name (``CandleBatch`` uses ``candleflow.Candle``, ``Prediction`` and
``Signal`` use ``candleflow.Direction``) so that each type is written once, in the file named after it. A
schema registry, and any reader that only gets one schema, needs the definitions inline, so
:func:`load_schema` inlines every named type the first time it is used and leaves later uses as plain
names, as Avro requires (a name defined twice is refused by every implementation). That self-contained
form is what a schema id is computed from (docs/schemas.md).
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from typing import Any

__all__ = ["BATCHES", "NAMESPACE", "SCHEMA_NAMES", "TYPE_NAMES", "full_name", "load_schema", "schema_file", "unbatch"]

NAMESPACE = "candleflow"

#: Every top-level record of the wire contract, in dependency order.
SCHEMA_NAMES: tuple[str, ...] = ("Candle", "CandleBatch", "Prediction", "Signal", "Outcome", "DeadLetter",
                                 "PredictionBatch", "OutcomeBatch")

#: Named types with a file of their own that no message is written with alone (records use them by name).
TYPE_NAMES: tuple[str, ...] = ("Direction",)

#: Batch records: many records of one type in one message, read as the same records one by one.
BATCHES: dict[str, tuple[str, str]] = {"CandleBatch": ("Candle", "candles"),
                                       "PredictionBatch": ("Prediction", "predictions"),
                                       "OutcomeBatch": ("Outcome", "outcomes")}


def unbatch(name: str, record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(record name, record) of every record a decoded message carries: a batch's items, or itself.

    >>> unbatch("PredictionBatch", {"predictions": [{"id": "p1"}, {"id": "p2"}]})
    [('Prediction', {'id': 'p1'}), ('Prediction', {'id': 'p2'})]
    >>> unbatch("Signal", {"id": "s1"})
    [('Signal', {'id': 's1'})]
    """
    if name in BATCHES:
        item, field = BATCHES[name]
        return [(item, r) for r in record[field]]
    return [(name, record)]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})


def schema_file(name: str) -> str:
    """The file that defines type ``name``: ``CandleBatch`` -> ``candle_batch.avsc``.

    >>> schema_file("DeadLetter")
    'dead_letter.avsc'
    """
    if name not in SCHEMA_NAMES and name not in TYPE_NAMES:
        raise KeyError(f"unknown schema {name!r}; expected one of {', '.join(SCHEMA_NAMES)}")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() + ".avsc"


def full_name(name: str) -> str:
    """The namespaced name a registry and a writer schema use for record ``name``.

    >>> full_name("Candle")
    'candleflow.Candle'
    """
    return f"{NAMESPACE}.{name}"


def _read_file(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(schema_file(name)).read_text(encoding="utf-8")
    return json.loads(text)


def _qualify(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _named_definitions() -> dict[str, dict[str, Any]]:
    """Every named type defined anywhere in the files, by full name, with an explicit namespace.

    The namespace is made explicit so a definition stays correct once inlined into another file.
    """
    found: dict[str, dict[str, Any]] = {}

    def visit(node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                visit(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in _NAMED:
                ns = node.get("namespace", namespace)
                name = _qualify(node["name"], ns)
                ns = name.rpartition(".")[0] or None
                found[name] = dict(node, name=name.rpartition(".")[2], namespace=ns)
                namespace = ns
                for field in node.get("fields", ()):
                    visit(field["type"], namespace)
            elif kind == "array":
                visit(node["items"], namespace)
            elif kind == "map":
                visit(node["values"], namespace)
            else:
                visit(kind, namespace)

    for schema_name in (*SCHEMA_NAMES, *TYPE_NAMES):
        visit(_read_file(schema_name), None)
    return found


def _inline(node: Any, namespace: str | None, defined: set[str], library: dict[str, dict[str, Any]]) -> Any:
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        name = _qualify(node, namespace)
        if name in defined:
            return node
        if name not in library:
            raise KeyError(f"schema references unknown type {name!r}")
        return _inline(copy.deepcopy(library[name]), namespace, defined, library)
    if isinstance(node, list):
        return [_inline(branch, namespace, defined, library) for branch in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    out = dict(node)
    if kind in _NAMED:
        ns = node.get("namespace", namespace)
        name = _qualify(node["name"], ns)
        defined.add(name)
        namespace = name.rpartition(".")[0] or None
        if "fields" in node:
            out["fields"] = [dict(f, type=_inline(f["type"], namespace, defined, library)) for f in node["fields"]]
    elif kind == "array":
        out["items"] = _inline(node["items"], namespace, defined, library)
    elif kind == "map":
        out["values"] = _inline(node["values"], namespace, defined, library)
    else:
        out["type"] = _inline(kind, namespace, defined, library)
    return out


def load_schema(name: str) -> dict[str, Any]:
    """Record ``name`` as a self-contained schema (a fresh dict each call; callers may mutate it).

    >>> batch = load_schema("CandleBatch")
    >>> batch["fields"][0]["type"]["items"]["name"]
    'Candle'
    >>> load_schema("Signal")["fields"][5]["type"]["symbols"]
    ['DOWN', 'UP']
    """
    return _inline(_read_file(name), None, set(), _named_definitions())
