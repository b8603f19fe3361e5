"""The Confluent Schema Registry read API on every worker: a URL is all a foreign client needs.

Point any Confluent (de)serializer's ``schema.registry.url`` at the worker (``http://127.0.0.1:6066``):

| view | answer |
| --- | --- |
| ``GET /schemas/ids/{id}`` (``/schema``, ``/subjects``, ``/versions``) | the schema of an id the worker writes |
| ``GET /schemas/types`` | ``["AVRO"]`` |
| ``GET /subjects`` | record subjects (``candleflow.Candle``) and topic subjects (``<topic>-value``) |
| ``GET /subjects/{subject}/versions`` (``/{version}``, ``/{version}/schema``) | version 1 of each, ``latest`` too |
| ``POST /subjects/{subject}`` | look a schema up |
| ``POST /subjects/{subject}/versions`` | the id of a schema already there; anything else: 422, read-only |
| ``GET /config`` (``/{subject}``), ``GET /mode`` | ``BACKWARD``, ``READONLY`` |

No token: nothing here changes state or tells more than the ``.avsc`` files do. Answers come from
:class:`schemas.registry_api.RegistryAnswers`, typed ``application/vnd.schemaregistry.v1+json``.
"""

from __future__ import annotations

import json
from typing import Any

from faust.web import Request, Response, View

from schemas.registry_api import RegistryAnswers, topic_subjects
from streams.errors import Retryable
from streams.web.errors import read_json_body

__all__ = ["attach_schema_registry_views"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def attach_schema_registry_views(pipeline: Any) -> None:
    app = pipeline.app
    api = RegistryAnswers(pipeline.candle_codec.store, topic_subjects(pipeline.settings))

    def answer(view: View, status: int, body: Any) -> Response:
        return view.bytes(json.dumps(body).encode(), content_type=CONTENT_TYPE, status=status)

    def ask(view: View, method, *args) -> Response:
        try:
            return answer(view, *method(*args))
        except Retryable as exc:  # a worker on a real registry that cannot reach it: say so, as a registry would
            return answer(view, 503, {"error_code": 50003, "message": f"the worker's schema registry is unavailable: {exc}"})

    def by_id(view: View, schema_id: str, method) -> Response:
        try:
            number = int(schema_id)
        except ValueError:
            return answer(view, 404, {"error_code": 40403, "message": f"Schema {schema_id} not found"})
        return ask(view, method, number)

    @app.page("/schemas/ids/{schema_id}")
    class SchemaById(View):
        async def get(self, request: Request, schema_id: str) -> Response:
            return by_id(self, schema_id, api.schema_by_id)

    @app.page("/schemas/ids/{schema_id}/schema")
    class RawSchemaById(View):
        async def get(self, request: Request, schema_id: str) -> Response:
            return by_id(self, schema_id, api.raw_schema_by_id)

    @app.page("/schemas/ids/{schema_id}/subjects")
    class SubjectsOfId(View):
        async def get(self, request: Request, schema_id: str) -> Response:
            return by_id(self, schema_id, api.subjects_of_id)

    @app.page("/schemas/ids/{schema_id}/versions")
    class VersionsOfId(View):
        async def get(self, request: Request, schema_id: str) -> Response:
            return by_id(self, schema_id, api.versions_of_id)

    @app.page("/schemas/types")
    class SchemaTypes(View):
        async def get(self, request: Request) -> Response:
            return answer(self, 200, ["AVRO"])

    @app.page("/subjects")
    class Subjects(View):
        async def get(self, request: Request) -> Response:
            return ask(self, api.subjects)

    @app.page("/subjects/{subject}")
    class LookUp(View):
        async def post(self, request: Request, subject: str) -> Response:
            body, failed = await read_json_body(self, request)
            return failed if failed is not None else ask(self, api.lookup, subject, body)

    @app.page("/subjects/{subject}/versions")
    class Versions(View):
        async def get(self, request: Request, subject: str) -> Response:
            return ask(self, api.versions, subject)

        async def post(self, request: Request, subject: str) -> Response:
            body, failed = await read_json_body(self, request)
            return failed if failed is not None else ask(self, api.register, subject, body)

    @app.page("/subjects/{subject}/versions/{version}")
    class Version(View):
        async def get(self, request: Request, subject: str, version: str) -> Response:
            return ask(self, api.version, subject, version)

    @app.page("/subjects/{subject}/versions/{version}/schema")
    class RawVersion(View):
        async def get(self, request: Request, subject: str, version: str) -> Response:
            return ask(self, api.raw_version, subject, version)

    @app.page("/config")
    class Config(View):
        async def get(self, request: Request) -> Response:
            return ask(self, api.config)

    @app.page("/config/{subject}")
    class SubjectConfig(View):
        async def get(self, request: Request, subject: str) -> Response:
            return ask(self, api.config, subject)

    @app.page("/mode")
    class Mode(View):
        async def get(self, request: Request) -> Response:
            return answer(self, 200, {"mode": "READONLY"})
