"""The registry's read answers (Confluent's shapes and codes) and the id rule anyone can recompute."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastavro.schema import to_parsing_canonical_form

from schemas import SCHEMA_NAMES, LocalSchemaStore, load_schema
from schemas.loader import full_name
from schemas.registry_api import RegistryAnswers, topic_subjects
from core.settings import Settings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture
def api():
    return RegistryAnswers(LocalSchemaStore(), topic_subjects(Settings(timeframes=("1m", "5m"))))


def test_every_id_is_recomputed_from_the_files_by_a_script_that_imports_nothing_of_ours(tmp_path):
    for path in SCHEMAS.glob("*.avsc"):
        shutil.copy(path, tmp_path)
    shutil.copy(SCHEMAS / "ids_from_files.py", tmp_path)
    # -I: no PYTHONPATH, no current directory on the path; only the copied folder and the installed packages.
    out = subprocess.run([sys.executable, "-I", str(tmp_path / "ids_from_files.py"), str(tmp_path)], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    recomputed = {subject: int(schema_id) for schema_id, subject in (line.split() for line in out.splitlines())}
    store = LocalSchemaStore()
    assert recomputed == {full_name(name): store.schema_id(name) for name in SCHEMA_NAMES}


def test_a_named_type_used_twice_is_defined_once():
    """The form ids are computed from is a valid schema: Prediction uses Direction twice, and defines it once."""
    text = to_parsing_canonical_form(load_schema("Prediction"))
    assert text.count('"type":"enum"') == 1 and text.count('"candleflow.Direction"') == 2


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_id_answers_its_self_contained_schema(api, name):
    schema_id = api.store.schema_id(name)
    status, body = api.schema_by_id(schema_id)
    assert status == 200 and set(body) == {"schema"}
    assert json.loads(body["schema"]) == load_schema(name)
    assert api.raw_schema_by_id(schema_id) == (200, load_schema(name))
    status, subjects = api.subjects_of_id(schema_id)
    assert status == 200 and full_name(name) in subjects
    assert api.versions_of_id(schema_id)[1] == [{"subject": s, "version": 1} for s in subjects]


def test_topic_subjects_name_the_record_written_there(api):
    status, subjects = api.subjects()
    assert status == 200 and subjects == sorted(subjects)
    expected = {"candleflow.candles.1m-value": "Candle", "candleflow.candles.5m-value": "Candle",
                "candleflow.predictions-value": "PredictionBatch", "candleflow.signals-value": "Signal",
                "candleflow.outcomes-value": "Outcome", "candleflow.dead-letters-value": "DeadLetter"}
    assert set(subjects) == set(expected) | {full_name(n) for n in SCHEMA_NAMES}
    for subject, record in expected.items():
        assert api.versions(subject) == (200, [1])
        for version in ("1", "latest", "-1"):
            status, body = api.version(subject, version)
            assert status == 200 and body["subject"] == subject and body["version"] == 1
            assert body["id"] == api.store.schema_id(record) and json.loads(body["schema"])["name"] == record
        assert api.raw_version(subject, "latest") == (200, load_schema(record))


@pytest.mark.parametrize("call, code, status", [
    (lambda a: a.schema_by_id(7), 40403, 404),
    (lambda a: a.subjects_of_id(7), 40403, 404),
    (lambda a: a.versions("candleflow.Trade"), 40401, 404),
    (lambda a: a.version("candleflow.Trade", "latest"), 40401, 404),
    (lambda a: a.version("candleflow.Candle", "2"), 40402, 404),
    (lambda a: a.version("candleflow.Candle", "two"), 42202, 422),
    (lambda a: a.version("candleflow.Candle", "0"), 42202, 422),
    (lambda a: a.lookup("candleflow.Candle", {"schema": "{not json"}), 42201, 422),
    (lambda a: a.lookup("candleflow.Candle", {"schema": json.dumps(load_schema("Candle")), "schemaType": "PROTOBUF"}), 42201, 422),
    (lambda a: a.lookup("candleflow.Candle", ["no", "schema"]), 42201, 422),
    (lambda a: a.lookup("candleflow.Candle", {"schema": json.dumps(load_schema("Signal"))}), 40403, 404),
    (lambda a: a.register("candleflow.Candle", {"schema": json.dumps(load_schema("Signal"))}), 42205, 422),
    (lambda a: a.register("candleflow.Trade", {"schema": json.dumps(load_schema("Signal"))}), 40401, 404),
])
def test_errors_carry_confluents_codes(api, call, code, status):
    got_status, body = call(api)
    assert (got_status, body["error_code"]) == (status, code) and body["message"]


def test_a_schema_already_there_is_found_and_registers_as_itself(api):
    # Whitespace, docs and key order do not matter: the canonical form decides.
    schema = load_schema("Candle")
    schema.pop("doc", None)
    text = json.dumps(schema, indent=2, sort_keys=True)
    status, found = api.lookup("candleflow.candles.5m-value", {"schema": text})
    assert status == 200 and found["id"] == api.store.schema_id("Candle") and found["version"] == 1
    assert api.register("candleflow.Candle", {"schema": text, "schemaType": "AVRO"}) == (200, {"id": found["id"]})
