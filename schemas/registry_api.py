"""The read side of the Confluent Schema Registry REST API, answered from a worker's own schemas.

A client in any language with a Confluent deserializer needs only a URL: it reads the schema id in each
message's frame and asks ``GET /schemas/ids/{id}``. Producers with ``use.latest.version`` ask
``GET /subjects/{subject}/versions/latest``. Every answer here is ``(status, body)`` with Confluent's JSON
shapes and error codes; :mod:`candleflow.web.schema_registry` puts them on the worker's web server.

Subjects: one per record (``candleflow.Candle``: RecordNameStrategy, what
:class:`~schemas.registry.RegistrySchemaStore` registers under) and one per Avro topic
(``<topic>-value``: TopicNameStrategy, the Confluent clients' default), naming the record that topic's
producers write. Each has one version, the schema this worker writes. Nothing can be registered: a
``POST`` of a schema that is already there answers its id (what a serializer with
``auto.register.schemas`` does on its first message); any other schema is refused as read-only.

>>> from schemas.store import LocalSchemaStore
>>> api = RegistryAnswers(LocalSchemaStore(), {"candleflow.signals": "Signal"})
>>> api.subjects()[1][-1]
'candleflow.signals-value'
>>> status, body = api.version("candleflow.signals-value", "latest")
>>> status, body["version"], body["id"] == api.store.schema_id("Signal")
(200, 1, True)
>>> json.loads(api.schema_by_id(body["id"])[1]["schema"])["name"]
'Signal'
>>> api.schema_by_id(7)
(404, {'error_code': 40403, 'message': 'Schema 7 not found'})
"""

from __future__ import annotations

import json
from typing import Any

from fastavro.schema import to_parsing_canonical_form

from schemas.loader import SCHEMA_NAMES, full_name, load_schema
from schemas.store import SchemaStore
from core.topics import OUTPUT_TOPICS

__all__ = ["RegistryAnswers", "topic_subjects"]

Answer = tuple[int, Any]

# Confluent's error codes (io.confluent.kafka.schemaregistry.rest.exceptions)
SUBJECT_NOT_FOUND, VERSION_NOT_FOUND, SCHEMA_NOT_FOUND = 40401, 40402, 40403
INVALID_SCHEMA, INVALID_VERSION, OPERATION_NOT_PERMITTED = 42201, 42202, 42205



def topic_subjects(settings: Any) -> dict[str, str]:
    """Topic name -> the record written on it, for every Avro topic of ``settings``.

    >>> from core.settings import Settings
    >>> topic_subjects(Settings(timeframes=("5m",)))["candleflow.candles.5m"]
    'Candle'
    """
    topics = {settings.candle_topic(tf): "Candle" for tf in settings.timeframes}
    # Which record a producer writes on each Avro topic (a candle topic also carries CandleBatch messages:
    # those are written under their record subject, as a topic subject names one record type).
    topics.update({settings.topic(name): out.record for name, out in OUTPUT_TOPICS.items() if out.record})
    return topics


def _error(status: int, code: int, message: str) -> Answer:
    return status, {"error_code": code, "message": message}


class RegistryAnswers:
    """Answers for the registry's read endpoints; ``topics`` maps topic names to the record written there."""

    def __init__(self, store: SchemaStore, topics: dict[str, str]) -> None:
        self.store = store
        self._subjects: dict[str, str] = {full_name(name): name for name in SCHEMA_NAMES}
        self._subjects.update({f"{topic}-value": record for topic, record in topics.items()})
        self._texts: dict[str, str] = {}

    def _text(self, name: str) -> str:
        """The schema as the registry returns it: the self-contained JSON the id is computed from."""
        if name not in self._texts:
            self._texts[name] = json.dumps(load_schema(name), separators=(",", ":"))
        return self._texts[name]

    def _by_id(self, schema_id: int) -> str | None:
        for name in SCHEMA_NAMES:
            if self.store.schema_id(name) == schema_id:
                return name
        return None

    def _version_body(self, subject: str) -> dict[str, Any]:
        name = self._subjects[subject]
        return {"subject": subject, "version": 1, "id": self.store.schema_id(name), "schema": self._text(name)}

    # ---- GET /schemas/... ---------------------------------------------------------------------

    def schema_by_id(self, schema_id: int) -> Answer:
        """``GET /schemas/ids/{id}``: ``{"schema": "<json>"}``."""
        name = self._by_id(schema_id)
        if name is None:
            return _error(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")
        return 200, {"schema": self._text(name)}

    def raw_schema_by_id(self, schema_id: int) -> Answer:
        """``GET /schemas/ids/{id}/schema``: the schema itself."""
        status, body = self.schema_by_id(schema_id)
        return (status, json.loads(body["schema"])) if status == 200 else (status, body)

    def subjects_of_id(self, schema_id: int) -> Answer:
        """``GET /schemas/ids/{id}/subjects``."""
        name = self._by_id(schema_id)
        if name is None:
            return _error(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")
        return 200, sorted(s for s, n in self._subjects.items() if n == name)

    def versions_of_id(self, schema_id: int) -> Answer:
        """``GET /schemas/ids/{id}/versions``: ``[{"subject": ..., "version": 1}, ...]``."""
        status, subjects = self.subjects_of_id(schema_id)
        return (status, [{"subject": s, "version": 1} for s in subjects]) if status == 200 else (status, subjects)

    # ---- GET /subjects/... --------------------------------------------------------------------

    def subjects(self) -> Answer:
        """``GET /subjects``."""
        return 200, sorted(self._subjects)

    def versions(self, subject: str) -> Answer:
        """``GET /subjects/{subject}/versions``."""
        if subject not in self._subjects:
            return _error(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        return 200, [1]

    def version(self, subject: str, version: str) -> Answer:
        """``GET /subjects/{subject}/versions/{version}``: ``version`` is a number, ``latest`` or ``-1``."""
        if version not in ("latest", "-1"):
            try:
                number = int(version)
            except ValueError:
                number = 0
            if not 1 <= number <= 2**31 - 1:
                return _error(422, INVALID_VERSION, f"The specified version '{version}' is not a valid version id. "
                              "Allowed values are between [1, 2^31-1] and the string \"latest\"")
        if subject not in self._subjects:
            return _error(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        if version not in ("latest", "-1", "1"):
            return _error(404, VERSION_NOT_FOUND, f"Version {version} not found.")
        return 200, self._version_body(subject)

    def raw_version(self, subject: str, version: str) -> Answer:
        """``GET /subjects/{subject}/versions/{version}/schema``."""
        status, body = self.version(subject, version)
        return (status, json.loads(body["schema"])) if status == 200 else (status, body)

    def config(self, subject: str | None = None) -> Answer:
        """``GET /config`` and ``GET /config/{subject}``: the compatibility rule docs/schemas.md describes."""
        if subject is not None and subject not in self._subjects:
            return _error(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        return 200, {"compatibilityLevel": "BACKWARD"}

    # ---- POST: look up, and registration of what is already there ------------------------------

    def _matching(self, subject: str, body: Any) -> Answer:
        if subject not in self._subjects:
            return _error(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            return _error(422, INVALID_SCHEMA, 'Invalid schema: the body must be {"schema": "<schema JSON>"}')
        if body.get("schemaType", "AVRO") != "AVRO":
            return _error(422, INVALID_SCHEMA, f"Invalid schema: only AVRO schemas live here, not {body['schemaType']}")
        try:
            given = to_parsing_canonical_form(json.loads(body["schema"]))
        except Exception as exc:  # not JSON, or not an Avro schema: fastavro's own message says which
            return _error(422, INVALID_SCHEMA, f"Invalid schema: {exc}")
        name = self._subjects[subject]
        if given != to_parsing_canonical_form(load_schema(name)):
            return _error(404, SCHEMA_NOT_FOUND, "Schema not found")
        return 200, self._version_body(subject)

    def lookup(self, subject: str, body: Any) -> Answer:
        """``POST /subjects/{subject}``: the version of ``subject`` holding the schema in ``body``."""
        return self._matching(subject, body)

    def register(self, subject: str, body: Any) -> Answer:
        """``POST /subjects/{subject}/versions``: ``{"id": N}`` for the schema already there, else read-only."""
        status, answer = self._matching(subject, body)
        if status == 200:
            return 200, {"id": answer["id"]}
        if answer["error_code"] == SCHEMA_NOT_FOUND:
            return _error(422, OPERATION_NOT_PERMITTED,
                          f"Subject {subject} is in read-only mode: this worker serves the schemas it writes")
        return status, answer
