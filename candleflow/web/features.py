"""``/features/{symbol}/{timeframe}``: a symbol's latest features, from the worker that owns the symbol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from kafka_io.consumer import json_safe
from features import FEATURE_NAMES, FeatureState
from core.series_keys import series_key
from candleflow.web.errors import error

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_feature_views", "features_body"]


def features_body(state: FeatureState | None, symbol: str, timeframe: str) -> dict[str, Any] | None:
    """The JSON body (NaN as null); None for an unknown key. Values come from the state's 60-step
    window, which keeps them as float32."""
    if state is None:
        return None
    window = state.window(1)
    values = window[-1].tolist() if len(window) else []
    return {"symbol": symbol, "timeframe": timeframe, "ready": state.ready, "count": state.count,
            "last_open_time": state.last_open_time, "features": json_safe(dict(zip(FEATURE_NAMES, values)))}


def attach_feature_views(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    # Feature states live on the partition of the symbol's candle topic (keyed by symbol), so the
    # request is routed by that topic's partitioning, not by the table key "symbol|timeframe".
    route_topic = app.topic(settings.candle_topic(settings.timeframes[0]), key_serializer="raw")

    @app.page("/features/{symbol}/{timeframe}")
    class Features(View):
        @app.topic_route(topic=route_topic, match_info="symbol")
        async def get(self, request: Request, symbol: str, timeframe: str) -> Response:
            async with pipeline.worker.checkpoint.batch_lock:
                series = pipeline.worker.checkpoint.current(series_key(symbol, timeframe))
                body = features_body(series.features if series is not None else None, symbol, timeframe)
            if body is None:
                return error(self, 404, f"no features for {symbol} {timeframe} on this pipeline yet")
            return self.json(body)
