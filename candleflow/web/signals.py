"""Signal views: the latest per symbol, the recent ones of a symbol (from its owner), and a live stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View

from kafka_io.consumer import json_safe, read_topic
from candleflow.web.errors import error
from candleflow.web.signal_stream import SignalFeed

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_signal_views"]

KEEPALIVE_S = 15.0


def _limit(request: Request, default: int = 100) -> int | None:
    try:
        return max(1, min(1000, int(request.query.get("limit", str(default)))))
    except ValueError:
        return None


async def _signals(settings: Any) -> AsyncIterator[dict[str, Any]]:
    async for _, record, _ in read_topic(settings, [settings.topic("signals")], from_beginning=False):
        if isinstance(record, dict):  # not an undecodable message
            yield record


def attach_signal_views(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    feed = pipeline.worker.signal_feed = SignalFeed(lambda: _signals(settings), max_clients=settings.web.sse_max_clients)

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
            client = feed.subscribe()
            if client is None:
                return error(self, 503, f"{feed.max_clients} clients already follow the stream (CANDLEFLOW_SSE_MAX_CLIENTS)")
            try:
                response = aiohttp_web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
                await response.prepare(request)
                await response.write(b": connected\n\n")
                quiet = 0.0
                while True:
                    try:
                        record = await asyncio.wait_for(client.next(), 1.0)
                    except asyncio.TimeoutError:  # nothing new: is the client still there?
                        if request.transport is None or request.transport.is_closing():
                            break
                        quiet += 1.0
                        if quiet >= KEEPALIVE_S:  # a comment line keeps proxies from closing an idle stream
                            await response.write(b": ping\n\n")
                            quiet = 0.0
                        continue
                    if record is None:
                        await response.write(b": disconnected (too slow, or the feed stopped): reconnect\n\n")
                        break
                    await response.write(f"data: {json.dumps(json_safe(record))}\n\n".encode())
                    quiet = 0.0
            except (ConnectionResetError, asyncio.CancelledError):
                pass  # the client went away
            finally:
                feed.unsubscribe(client)
            return response

    @app.page("/signals/{symbol}")
    class SymbolSignals(View):
        @app.table_route(table=pipeline.recent_signals.heads, match_info="symbol")
        async def get(self, request: Request, symbol: str) -> Response:
            limit = _limit(request)
            if limit is None:
                return error(self, 400, "limit must be an integer")
            return self.json({"symbol": symbol, "signals": pipeline.recent_signals.recent(symbol, limit)})
