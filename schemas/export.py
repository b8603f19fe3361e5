"""What ``candleflow schemas`` prints and writes: ids, subjects and self-contained ``.avsc`` files.

``export`` writes, besides one self-contained ``<Name>.avsc`` per record, ``registry-import.json``: the
``POST /subjects/{subject}/versions`` bodies (schema, id, version 1) that load a real Schema Registry in
IMPORT mode with the ids already on the topics, so moving to one changes no byte (docs/schemas.md).

>>> from schemas.store import LocalSchemaStore
>>> rows = schema_rows(LocalSchemaStore(), {"candleflow.signals": "Signal"})
>>> [r for r in rows if r["name"] == "Signal"][0]["subjects"]
['candleflow.Signal', 'candleflow.signals-value']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.loader import SCHEMA_NAMES, load_schema
from schemas.registry_api import RegistryAnswers
from schemas.store import SchemaStore

__all__ = ["export_schemas", "schema_rows"]


def schema_rows(store: SchemaStore, topics: dict[str, str]) -> list[dict[str, Any]]:
    """One row per record: ``name``, ``id`` and the ``subjects`` a worker serves it under."""
    api = RegistryAnswers(store, topics)
    return [{"name": name, "id": store.schema_id(name), "subjects": api.subjects_of_id(store.schema_id(name))[1]}
            for name in SCHEMA_NAMES]


def export_schemas(folder: Path, store: SchemaStore, topics: dict[str, str]) -> list[Path]:
    """Write every record's self-contained schema and ``registry-import.json`` into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written, imports = [], []
    for row in schema_rows(store, topics):
        schema = load_schema(row["name"])
        path = folder / f"{row['name']}.avsc"
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
        imports += [{"subject": subject, "body": {"schema": json.dumps(schema, separators=(",", ":")),
                                                  "schemaType": "AVRO", "id": row["id"], "version": 1}}
                    for subject in row["subjects"]]
    path = folder / "registry-import.json"
    path.write_text(json.dumps(imports, indent=2) + "\n", encoding="utf-8")
    return [*written, path]
