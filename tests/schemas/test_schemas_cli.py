"""``candleflow schemas list | show | export``: ids and subjects, and files a registry can be loaded from."""

from __future__ import annotations

import json

import fastavro
import pytest

from schemas import SCHEMA_NAMES, LocalSchemaStore, load_schema
from schemas.store import local_schema_id
from tests.candleflow.test_cli import run_cli


def test_list_names_every_record_with_its_id_and_subjects():
    result = run_cli("schemas", "list", "--json", env={"CANDLEFLOW_TOPIC_PREFIX": "desk1"})
    rows = json.loads(result.stdout)
    store = LocalSchemaStore()
    assert [(r["name"], r["id"]) for r in rows] == [(n, store.schema_id(n)) for n in SCHEMA_NAMES]
    signal = next(r for r in rows if r["name"] == "Signal")
    assert signal["subjects"] == ["candleflow.Signal", "desk1.signals-value"]
    table = run_cli("schemas", "list").stdout.splitlines()
    assert len(table) == len(SCHEMA_NAMES) and str(store.schema_id("Candle")) in table[0]


def test_show_prints_the_self_contained_schema():
    result = run_cli("schemas", "show", "Signal")
    assert result.returncode == 0 and json.loads(result.stdout) == load_schema("Signal")
    assert str(LocalSchemaStore().schema_id("Signal")) in result.stderr


def test_export_writes_files_that_parse_alone_and_keep_the_ids(tmp_path):
    out = tmp_path / "schemas"
    assert run_cli("schemas", "export", str(out)).returncode == 0
    store = LocalSchemaStore()
    for name in SCHEMA_NAMES:
        schema = json.loads((out / f"{name}.avsc").read_text())
        fastavro.parse_schema(schema, named_schemas={})  # self-contained: no other file needed
        assert local_schema_id(schema) == store.schema_id(name)
    imports = json.loads((out / "registry-import.json").read_text())
    assert {(i["subject"], i["body"]["id"]) for i in imports} >= {(f"candleflow.{n}", store.schema_id(n)) for n in SCHEMA_NAMES}
    assert all(i["body"]["version"] == 1 and i["body"]["schemaType"] == "AVRO" for i in imports)


@pytest.mark.parametrize("args, fragment", [(["schemas", "show", "Trade"], "unknown record"),
                                            (["schemas", "export"], "Missing argument")])
def test_bad_arguments_give_one_line(args, fragment):
    result = run_cli(*args)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr


def test_export_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("schemas", "export", str(tmp_path))
    assert result.returncode == 2 and "not empty" in result.stderr and (tmp_path / "keep.txt").read_text() == "mine"
