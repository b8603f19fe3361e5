"""``POST /predict``: score candles sent in the request, like a model server.

Stateless: each (symbol, timeframe) series in the request starts from an empty feature state, so
send enough history (34 candles warm every feature) and read each prediction's ``ready`` flag.
Body: ``{"candles": [Candle records, oldest first]}``; at most 5,000 candles and 1 MiB. Scored in a
thread, off the event loop (the worker's agents and heartbeats go on), ``MAX_CONCURRENT`` requests at a
time; more wait their turn for at most ``QUEUE_WAIT_S``, then get 503.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from faust.web import Request, Response, View

from core.candle import candle_from_record
from kafka_io.consumer import json_safe
from core.errors import InvalidInput
from streams.scoring import score_candles
from candleflow.web.errors import error, read_json_body

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_predict_view", "MAX_PREDICT_CANDLES"]

MAX_PREDICT_CANDLES = 5000
MAX_CONCURRENT = 2  # requests scored at once (each holds a thread and a share of the CPU)
QUEUE_WAIT_S = 5.0


def attach_predict_view(pipeline: Pipeline) -> None:
    app = pipeline.app
    slots = asyncio.Semaphore(MAX_CONCURRENT)

    @app.page("/predict")
    class Predict(View):
        async def post(self, request: Request) -> Response:
            body, failure = await read_json_body(self, request)
            if failure:
                return failure
            records = body.get("candles") if isinstance(body, dict) else None
            if not isinstance(records, list) or not records:
                return error(self, 400, 'expected {"candles": [candle, ...]} with at least one candle')
            if len(records) > MAX_PREDICT_CANDLES:
                return error(self, 413, f"{len(records)} candles; at most {MAX_PREDICT_CANDLES} per request")
            candles = []
            for i, record in enumerate(records):
                try:
                    if not isinstance(record, dict):
                        raise InvalidInput("a candle must be a JSON object")
                    candles.append((candle_from_record(record), None))
                except InvalidInput as exc:
                    return error(self, 400, f"candle {i}: {exc}")
            model = pipeline.worker.model
            try:
                await asyncio.wait_for(slots.acquire(), QUEUE_WAIT_S)
            except asyncio.TimeoutError:
                return error(self, 503, f"{MAX_CONCURRENT} /predict requests are being scored; try again")
            try:
                scored = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
                    score_candles, candles, {}, model, pipeline.settings.signal_threshold))
            finally:
                slots.release()
            if scored.rejected:
                i, exc = scored.rejected[0]
                return error(self, 400, f"candle {i}: {exc}")
            return self.json({"model_version": model.version,
                              "predictions": json_safe(scored.predictions), "signals": json_safe(scored.signals)})
