"""JSON errors, request-size limits and the admin token check, shared by the views."""

from __future__ import annotations

import hmac
from typing import Any

from faust.web import Request, Response, View

from streams.app import MAX_BODY_BYTES

__all__ = ["MAX_BODY_BYTES", "error", "read_json_body", "admin_denied"]


def error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message, "status": status}, status=status)


async def read_json_body(view: View, request: Request, limit: int = MAX_BODY_BYTES) -> tuple[Any, Response | None]:
    """(body, None) or (None, an error response) for a missing, oversized or malformed JSON body."""
    length = request.content_length if hasattr(request, "content_length") else None
    if length is not None and length > limit:
        return None, error(view, 413, f"request body of {length} bytes exceeds the {limit}-byte limit")
    try:
        raw = await request.read()
    except Exception as exc:  # aiohttp refuses bodies over client_max_size while reading
        return None, error(view, 413, f"request body refused: {exc}")
    if not raw:
        return None, error(view, 400, "request body is empty; send JSON")
    try:
        import json

        return json.loads(raw), None
    except ValueError as exc:
        return None, error(view, 400, f"request body is not JSON: {exc}")


def admin_denied(view: View, request: Request, token: str) -> Response | None:
    """None when the request carries the admin token (``Authorization: Bearer <token>``), else a 401/403."""
    if not token:
        return error(view, 403, "admin actions are disabled: set CANDLEFLOW_ADMIN_TOKEN to enable them")
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
        return error(view, 401, "admin token missing or wrong (Authorization: Bearer <token>)")
    return None
