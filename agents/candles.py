"""The candle agent: candles in; predictions, signals and dead letters out; feature state in a table.

Thin on purpose: it decodes, hands the batch to :func:`streams.scoring.score_candles`, and emits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from agents.outcomes import flush_dirty_learners, label_and_learn_batch, online_model_for
from agents.patterns import add_consensus
from agents.table_cache import FeatureStateCache, as_current
from streams.app import Pipeline
from streams.candle import Candle
from streams.dead_letters import dead_letter_record
from streams.errors import DecodeError, InvalidInput
from streams.ingest import decode_candle_message
from streams.scoring import score_candles, state_key

__all__ = ["attach_candle_agent", "handle_candle_events"]

log = logging.getLogger(__name__)

# Below this many candles, scoring inline is cheaper than the hand-off to a thread (~50-100 us).
OFFLOAD_MIN_BATCH = 64


def attach_candle_agent(pipeline: Pipeline) -> None:
    app, settings = pipeline.app, pipeline.settings
    pipeline.live_states = FeatureStateCache(pipeline.feature_states, pipeline.feature_windows)

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(app: Any, revoked: Any, **_: Any) -> None:
        if pipeline.live_learners is not None:
            flush_dirty_learners(pipeline)  # what was learned since the last flush, before the partitions go
        pipeline.forget_live_state()

    @app.on_partitions_assigned.connect
    async def forget_on_assign(app: Any, assigned: Any, **_: Any) -> None:
        pipeline.forget_live_state()

    @app.agent(pipeline.candles, name="candles")
    async def process_candles(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            await handle_candle_events(pipeline, events)


async def handle_candle_events(pipeline: Pipeline, events: list[Any]) -> None:
    """Decode, score and emit one batch of candle events."""
    candles: list[tuple[Candle, int | None]] = []
    origin: list[Any] = []  # the source event of each decoded candle
    dead: list[tuple[Any, InvalidInput]] = []
    for event in events:
        message = event.message
        produced_at = round(message.timestamp * 1000) if message.timestamp else None  # Faust gives seconds
        try:
            decoded = decode_candle_message(pipeline.candle_codec, message.value, pipeline.timeframe_of.get(message.topic),
                                            pipeline.settings.max_message_bytes)
        except DecodeError as exc:
            dead.append((event, exc))
            continue
        for item in decoded:
            if isinstance(item, InvalidInput):
                dead.append((event, item))
            else:
                candles.append((item, produced_at))
                origin.append(event)

    states = pipeline.live_states
    for candle, _ in candles:  # read the table here, on the event loop, before any hand-off to a thread
        states.get(state_key(candle.symbol, candle.timeframe))
    # The models are taken once for the whole batch, even if a reload swaps them meanwhile.
    model, (candidate, share) = pipeline.model, pipeline.candidate or (None, 0.0)
    online_for = online_model_for(pipeline, origin) if pipeline.settings.outcome_loop else None
    score = functools.partial(score_candles, candles, states, model, pipeline.settings.signal_threshold, candidate, share,
                              online_for, pipeline.settings.online_weight)
    started = time.perf_counter()
    if len(candles) >= OFFLOAD_MIN_BATCH:  # a big batch would hold the event loop (heartbeats, web views)
        scored = await asyncio.get_running_loop().run_in_executor(None, score)
    else:
        scored = score()
    if candles:
        pipeline.stats.inference_ms.add((time.perf_counter() - started) * 1000)
        pipeline.stats.batch_sizes.add(len(candles))
    dead += [(origin[i], exc) for i, exc in scored.rejected]

    # Each touched state is written back once, under the last event of its key, so its changelog
    # record lands on the partition that owns the symbol.
    last_event_of = {state_key(candles[i][0].symbol, candles[i][0].timeframe): origin[i] for i in scored.sources}
    for key, event in last_event_of.items():
        states.put(key, event)
    if pipeline.settings.outcome_loop:
        await label_and_learn_batch(pipeline, candles, origin, scored)

    # send_soon: buffered, not awaited per record; Faust flushes the producer before it commits offsets.
    for record in scored.predictions:
        pipeline.predictions.send_soon(key=record["symbol"].encode(), value=record)
    now_ms = time.time() * 1000
    pipeline.stats.end_to_end_ms.extend([now_ms - r["candle_produced_at"] for r in scored.predictions if r["candle_produced_at"]])
    for record, i in zip(scored.signals, scored.signal_sources):
        if pipeline.patterns is not None:
            record = await add_consensus(pipeline, record)
        pipeline.signals.send_soon(key=record["symbol"].encode(), value=record)
        as_current(origin[i])
        pipeline.recent_signals.add(record)
    for event, exc in dead:
        m = event.message
        log.warning("dead letter from %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)
        pipeline.dead_letters.send_soon(key=m.key, value=dead_letter_record(exc, m.topic, m.partition, m.offset, m.key, m.value))
    pipeline.stats.count(candles=len(candles) + len(dead) - len(scored.rejected), predictions=len(scored.predictions),
                         signals=len(scored.signals), dead_letters=len(dead), batches=1)
