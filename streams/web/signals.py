"""Signal views: the latest per symbol, the recent ones of a symbol (from its owner), and a live stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View

from streams.consumer import json_safe, read_topic
from streams.web.errors import error

__all__ = ["attach_signal_views"]


def _limit(request: Request, default: int = 100) -> int | None:
    try:
        return max(1, min(1000, int(request.query.get("limit", str(default)))))
    except ValueError:
        return None


def attach_signal_views(pipeline: Any) -> None:
    app, settings = pipeline.app, pipeline.settings

    @app.page("/signals/latest")
    class LatestSignals(View):
        async def get(self, request: Request) -> Response:
            limit = _limit(request)
            if limit is None:
                return error(self, 400, "limit must be an integer")
            return self.json({"signals": pipeline.recent_signals.latest(limit)})

    @app.page("/signals/stream")
    class SignalStream(View):
        """Server-sent events: one ``data: {signal}`` line per new signal on the signals topic."""

        async def get(self, request: Request) -> Any:
            response = aiohttp_web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await response.prepare(request)
            await response.write(b": connected\n\n")
            try:
                async for _, record, _ in read_topic(settings, [settings.topic("signals")], from_beginning=False):
                    if isinstance(record, dict):
                        await response.write(f"data: {json.dumps(json_safe(record))}\n\n".encode())
            except (ConnectionResetError, asyncio.CancelledError):
                pass  # the client went away
            return response

    @app.page("/signals/{symbol}")
    class SymbolSignals(View):
        @app.table_route(table=pipeline.recent_signals.heads, match_info="symbol")
        async def get(self, request: Request, symbol: str) -> Response:
            limit = _limit(request)
            if limit is None:
                return error(self, 400, "limit must be an integer")
            return self.json({"symbol": symbol, "signals": pipeline.recent_signals.recent(symbol, limit)})
