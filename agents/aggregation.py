"""The aggregation agent: closed 5m/15m/1h/... candles built from ``candles.1m``.

Invalid 1m candles are skipped here: the candle agent consumes ``candles.1m`` too (settings require
it whenever aggregation is on) and is the one that sends them to dead-letters, once.
"""

from __future__ import annotations

from typing import Any

from streams.aggregation import CandleAggregator
from streams.app import Pipeline
from core.candle import Candle
from streams.client_internals import set_current_event
from core.errors import InvalidInput
from core.candle_messages import decode_candle_message
from streams.scoring import state_key

__all__ = ["attach_aggregation_agent"]


def attach_aggregation_agent(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    if not settings.aggregate_to:
        return
    source = app.topic(settings.candle_topic("1m"), key_serializer="raw", value_serializer="raw")
    outputs = {tf: app.topic(settings.candle_topic(tf), key_serializer="raw", value_serializer="avro-candle")
               for tf in settings.aggregate_to}
    table = pipeline.aggregators

    @app.agent(source, name="aggregate")
    async def aggregate(stream: Any) -> None:
        async for event in stream.events():
            try:
                minutes = [c for c in decode_candle_message(pipeline.candle_codec, event.message.value, "1m",
                                                             settings.max_message_bytes, settings.latest_open_time())
                           if isinstance(c, Candle)]
            except InvalidInput:
                continue
            for minute in minutes:
                for tf, topic in outputs.items():
                    key = state_key(minute.symbol, tf).encode()
                    blob = table.get(key)
                    aggregator = CandleAggregator.from_bytes(blob) if blob else CandleAggregator(tf)
                    try:
                        closed = aggregator.add(minute)
                    except InvalidInput:
                        continue  # late or duplicate minute: the candle agent dead-letters it
                    set_current_event(event)
                    table[key] = aggregator.to_bytes()
                    for candle in closed:
                        await topic.send(key=candle.symbol.encode(), value=candle.to_record())
