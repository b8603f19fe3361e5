"""Admin actions (``Authorization: Bearer $CANDLEFLOW_ADMIN_TOKEN``; disabled while no token is set).

- ``POST /admin/promote`` ``{"version": V}``: V serves everyone (through the registry and model-events).
- ``POST /admin/candidate`` ``{"version": V, "share": S}``: V serves a share S of the symbols.
- ``POST /admin/rollback`` ``{"name": N}``: back to the previously active version of model N.
- ``POST /admin/retrain`` ``{"reason": "..."}``: publish a manual retrain request.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from core.errors import ConfigError, Retryable
from candleflow.web.errors import admin_denied, error, read_json_body

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_admin_views"]


async def _registry_action(view: View, action: Any) -> Response:
    from training.commands import with_registry

    try:
        return view.json({"ok": True, "result": await with_registry(action, publish=True)})
    except ConfigError as exc:
        return error(view, 400, str(exc))
    except Retryable as exc:
        return error(view, 503, f"registry unavailable: {exc}")


def attach_admin_views(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings

    async def body_of(view: View, request: Request, *fields: str) -> tuple[dict | None, Response | None]:
        denied = admin_denied(view, request, str(settings.web.admin_token))
        if denied:
            return None, denied
        body, failure = await read_json_body(view, request, limit=16_384)
        if failure:
            return None, failure
        if not isinstance(body, dict) or any(not body.get(f) for f in fields):
            return None, error(view, 400, f"expected a JSON object with {', '.join(fields)}")
        return body, None

    @app.page("/admin/promote")
    class Promote(View):
        async def post(self, request: Request) -> Response:
            body, failure = await body_of(self, request, "version")
            return failure or await _registry_action(self, lambda r: r.activate(str(body["version"]), note="admin"))

    @app.page("/admin/candidate")
    class Candidate(View):
        async def post(self, request: Request) -> Response:
            body, failure = await body_of(self, request, "version", "share")
            if failure:
                return failure
            try:
                share = float(body["share"])
            except (TypeError, ValueError):
                return error(self, 400, "share must be a number within 0..1")
            return await _registry_action(self, lambda r: r.set_candidate(str(body["version"]), share, note="admin"))

    @app.page("/admin/rollback")
    class Rollback(View):
        async def post(self, request: Request) -> Response:
            body, failure = await body_of(self, request, "name")
            return failure or await _registry_action(self, lambda r: r.rollback(str(body["name"]), note="admin"))

    @app.page("/admin/retrain")
    class Retrain(View):
        async def post(self, request: Request) -> Response:
            body, failure = await body_of(self, request)
            if failure:
                return failure
            model = getattr(pipeline.worker.model, "version", "unknown")
            retrain = {"id": uuid.uuid4().hex, "model_version": model, "time": int(time.time() * 1000),
                       "reasons": ["manual"], "requested_by": "admin", "evidence": {"note": str(body.get("reason", ""))[:500]}}
            await pipeline.retrain_requests.send(key=model.encode(), value=retrain)
            return self.json({"ok": True, "request": retrain}, status=202)
