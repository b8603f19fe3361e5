"""Every schema id from the ``.avsc`` files alone: the rule a client in any language can follow.

Run: ``python ids_from_files.py [DIR]`` (default: the folder of this file); it prints ``id subject``
lines, one per record. On purpose it imports nothing of Candleflow, only fastavro, so it can be copied
beside the files into any project (docs/schemas.md states the rule in words):

1. the self-contained schema of a record: its file, with every named type it uses defined once, at its
   first use (depth first, in field order), and referenced by full name after that. This is the only form
   Avro accepts as one schema, since a name may not be defined twice; ``fastavro.schema.load_schema_ordered``
   builds it from the files, dependencies first;
2. its Parsing Canonical Form (the Avro specification's; docs, defaults and aliases dropped);
3. SHA-256 of that text in UTF-8; the first 4 bytes as a big-endian integer, the top bit cleared (a
   Confluent id is a signed 32-bit int), and 1 in place of 0 (0 means "no id").
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from fastavro.schema import load_schema_ordered, to_parsing_canonical_form

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _full(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _references(node, namespace=None) -> list[str]:
    """Full names of the named types ``node`` uses without defining them."""
    if isinstance(node, str):
        return [] if node in _PRIMITIVES else [_full(node, namespace)]
    if isinstance(node, list):
        return [r for branch in node for r in _references(branch, namespace)]
    if not isinstance(node, dict):
        return []
    kind = node.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        inner = _full(node["name"], node.get("namespace", namespace)).rpartition(".")[0] or None
        return [r for f in node.get("fields", ()) for r in _references(f["type"], inner)]
    if kind == "array":
        return _references(node["items"], namespace)
    if kind == "map":
        return _references(node["values"], namespace)
    return _references(kind, namespace)


def schema_ids(folder: Path) -> dict[str, int]:
    """Full record name -> id, for every record defined at the top of a ``.avsc`` file in ``folder``."""
    files = {}
    for path in sorted(folder.glob("*.avsc")):
        top = json.loads(path.read_text(encoding="utf-8"))
        files[_full(top["name"], top.get("namespace"))] = (path, top)

    def ordered(name: str, out: list[Path]) -> list[Path]:
        path, top = files[name]
        for ref in _references(top):
            if ref in files and ref != name:
                ordered(ref, out)
        if path not in out:
            out.append(path)
        return out

    ids = {}
    for name, (_, top) in files.items():
        if top.get("type") != "record":
            continue  # e.g. an enum: used inside records, never a message of its own
        schema = load_schema_ordered([str(p) for p in ordered(name, [])], _write_hint=False)
        digest = hashlib.sha256(to_parsing_canonical_form(schema).encode("utf-8")).digest()
        ids[name] = int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1
    return ids


if __name__ == "__main__":
    for subject, schema_id in sorted(schema_ids(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)).items()):
        print(schema_id, subject)
