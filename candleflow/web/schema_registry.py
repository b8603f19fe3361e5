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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from schemas.registry_api import RegistryAnswers, topic_subjects
from core.errors import Retryable
from candleflow.web.errors import read_json_body

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_schema_registry_views"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def attach_schema_registry_views(pipeline: Pipeline) -> None:
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

    def serve(path: str, get: Callable[..., Response] | None = None,
              post: Callable[..., Response] | None = None) -> None:
        """One page: ``get(view, **path_params)``, ``post(view, json_body, **path_params)``."""
        methods: dict[str, Any] = {}
        if get is not None:
            async def on_get(self: View, request: Request, **params: str) -> Response:
                return get(self, **params)
            methods["get"] = on_get
        if post is not None:
            async def on_post(self: View, request: Request, **params: str) -> Response:
                body, failed = await read_json_body(self, request)
                return failed if failed is not None else post(self, body, **params)
            methods["post"] = on_post
        app.page(path)(type(f"Registry{path.replace('/', '_')}", (View,), methods))

    for suffix, method in (("", api.schema_by_id), ("/schema", api.raw_schema_by_id),
                           ("/subjects", api.subjects_of_id), ("/versions", api.versions_of_id)):
        serve(f"/schemas/ids/{{schema_id}}{suffix}", get=lambda view, schema_id, method=method: by_id(view, schema_id, method))
    serve("/schemas/types", get=lambda view: answer(view, 200, ["AVRO"]))
    serve("/subjects", get=lambda view: ask(view, api.subjects))
    serve("/subjects/{subject}", post=lambda view, body, subject: ask(view, api.lookup, subject, body))
    serve("/subjects/{subject}/versions", get=lambda view, subject: ask(view, api.versions, subject),
          post=lambda view, body, subject: ask(view, api.register, subject, body))
    serve("/subjects/{subject}/versions/{version}", get=lambda view, subject, version: ask(view, api.version, subject, version))
    serve("/subjects/{subject}/versions/{version}/schema",
          get=lambda view, subject, version: ask(view, api.raw_version, subject, version))
    serve("/config", get=lambda view: ask(view, api.config))
    serve("/config/{subject}", get=lambda view, subject: ask(view, api.config, subject))
    serve("/mode", get=lambda view: answer(view, 200, {"mode": "READONLY"}))
