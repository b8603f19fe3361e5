"""The candle agent: candles in; predictions, signals, outcomes and dead letters out.

Thin on purpose: it lets through only the events that continue each partition in order
(:mod:`streams.offset_guard`), decodes a batch, calls the pure step :func:`streams.step.process_batch`,
emits the result in one explicit order (predictions, outcomes and pattern memory, then signals with their
consensus), has the partitions' learners learn the step's outcomes behind the next step's outputs, and
hands its events and the series they changed to :mod:`agents.checkpoint`, which makes the state durable
behind the outputs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any, Callable

from faust.types import TP

from streams.client_internals import committed_offset, send_now
from streams.offset_guard import OffsetGuard
from agents.outcomes import emit_retrain_requests, learner_for_partition
from agents.patterns import add_consensus, remember_patterns
from streams.app import Pipeline
from streams.dead_letters import combined, dead_letter_record
from core.errors import DecodeError, InvalidInput
from core.candle_messages import decode_candle_message
from streams.ingest import groups_by_bytes, misrouted
from core.retry import until_available
from core.series_keys import series_key
from core.topics import LABELS_ONLY_HEADER
from streams.series import Position
from learning.loop import LoopResult, learn_outcomes
from streams.step import BatchResult, Models, SourcedCandle, StepConfig, process_batch

__all__ = ["attach_candle_agent", "handle_candle_events"]

log = logging.getLogger(__name__)

# Below this many candles, the step runs inline: cheaper than the hand-off to a thread (~50-100 us).
OFFLOAD_MIN_BATCH = 64
# Items per PredictionBatch/OutcomeBatch record: a prediction is ~0.6 KB, so a record stays near 300 KB.
RECORDS_PER_BATCH = 500
# From this many candles, a step's outputs go to the broker at once instead of lingering for more (the
# producer's linger, 50 ms, is for small steps: a few symbols at a high rate share requests, so the
# embedded broker gets few, large batches). A close of many symbols is what must be out fast, and its
# batches are big enough to be worth a request of their own.
SEND_NOW_MIN_CANDLES = 16
STEP_MAX_CANDLES = 4096  # candles per step: bounds the records a take of big CandleBatch messages holds at once


def attach_candle_agent(pipeline: Pipeline) -> None:
    app, settings, checkpoint = pipeline.app, pipeline.settings, pipeline.worker.checkpoint
    app.drain_hooks.append(checkpoint.run)  # Faust waits for every event to be acked before a rebalance/stop
    guard = OffsetGuard()
    app.gapless_topics.update(pipeline.candles.topics)  # never compacted: an offset hole is a lost candle

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(app: Any, revoked: Any, **_: Any) -> None:
        checkpoint.forget()
        guard.reset()

    @app.on_partitions_assigned.connect
    async def forget_on_assign(app: Any, assigned: Any, **_: Any) -> None:
        checkpoint.forget()
        guard.reset()

    @app.timer(checkpoint.interval_s)
    async def run_checkpoint() -> None:
        await checkpoint.run()
        for (topic, partition), offset in guard.stalled(functools.partial(_highwater, app), time.monotonic()).items():
            await _read_again(app, guard, topic, partition, offset)  # the broker has more, none came

    @app.agent(pipeline.candles, name="candles")
    async def process_candles(stream: Any) -> None:
        checkpoint.stream = stream
        async for events in stream.noack_take(settings.batch_max, within=settings.batch_within_s):
            events = await _in_order(app, guard, events)
            if not events:
                continue
            for group in groups_by_bytes([len(e.message.value or b"") for e in events]):
                try:
                    await handle_candle_events(pipeline, events[group])
                except Exception as exc:
                    # The live state may hold candles whose outputs never went out: only a restart from the
                    # committed offsets (and the checkpointed state) is consistent again.
                    log.exception("candle batch failed after the state moved on; stopping the worker")
                    await app.crash(exc)
                    return
                if checkpoint.due:  # bounds what a crash makes the group redo, and the live series
                    await checkpoint.run()


async def _in_order(app: Any, guard: OffsetGuard, events: list[Any]) -> list[Any]:
    """The events to process now; a partition with a hole is read again (streams/offset_guard.py).
    Held-back events are dropped unacknowledged: they come again."""
    admitted = guard.admit([(e.message.topic, e.message.partition, e.message.offset) for e in events], time.monotonic(),
                           committed=lambda tp: committed_offset(app.consumer, TP(*tp)))
    for (topic, partition), hole in admitted.holes.items():
        await _read_again(app, guard, topic, partition, hole)
    for (topic, partition), offset in admitted.seek.items():
        await app.consumer.seek(TP(topic, partition), offset)
    return events if len(admitted.indices) == len(events) else [events[i] for i in admitted.indices]


def _highwater(app: Any, tp: tuple[str, int]) -> int | None:
    try:
        return app.consumer.highwater(TP(*tp))
    except Exception:  # noqa: BLE001 - a partition being revoked right now: nothing to say
        return None


async def _read_again(app: Any, guard: OffsetGuard, topic: str, partition: int, hole: int) -> None:
    """Offset ``hole`` of a candle partition was not delivered: ask the broker what lies there and read
    the partition again from it, or from the first message after it (a transaction marker)."""
    tp = TP(topic, partition)
    start = guard.resolve((topic, partition), hole, await app.consumer.first_offset_at(tp, hole))
    if start > hole:
        log.warning("%s[%d]: offsets %d..%d hold no message; going on from %d", topic, partition, hole, start - 1, start)
        await app.consumer.accept_gap(tp, hole, start - 1)
    else:
        log.warning("%s[%d]: offset %d was not delivered; reading the partition again from it", topic, partition, hole)
    await app.consumer.seek(tp, start)


def _decode(pipeline: Pipeline, events: list[Any]) -> tuple[list[SourcedCandle], list[Any], list[tuple[Any, InvalidInput]]]:
    candles: list[SourcedCandle] = []
    origin: list[Any] = []  # the source event of each decoded candle
    dead: list[tuple[Any, InvalidInput]] = []
    latest = pipeline.settings.latest_open_time()
    for event in events:
        message = event.message
        produced_at = round(message.timestamp * 1000) if message.timestamp else None  # Faust gives seconds
        try:
            decoded = decode_candle_message(pipeline.candle_codec, message.value, pipeline.timeframe_of.get(message.topic),
                                            pipeline.settings.max_message_bytes, latest)
        except DecodeError as exc:
            dead.append((event, exc))
            continue
        position = Position(message.topic, message.partition, message.offset)
        for item in decoded:
            if not isinstance(item, InvalidInput):
                item = misrouted(item, message.partition, pipeline.partition_of) or item
            if isinstance(item, InvalidInput):
                dead.append((event, item))
            else:
                candles.append((item, produced_at, position))
                origin.append(event)
    return candles, origin, dead


async def handle_candle_events(pipeline: Pipeline, events: list[Any]) -> None:
    """Decode, step and emit one batch of candle events; the checkpoint acknowledges them later."""
    checkpoint = pipeline.worker.checkpoint
    # Decoded before the lock: a schema registry that is down is waited out here, while no state has moved.
    decoded = await until_available(functools.partial(_decode, pipeline, events), "candle batch not decoded yet")
    async with checkpoint.batch_lock:
        try:
            await _handle_locked(pipeline, events, decoded)
        except BaseException:
            # Stopped half-way (cancelled by a stop, or failed): the live state may hold candles whose
            # outputs never went out. Abandoned under the lock, so no checkpoint can write it first.
            checkpoint.abandon()
            raise


async def _handle_locked(pipeline: Pipeline, events: list[Any], decoded: tuple[list[SourcedCandle], list[Any], list]) -> None:
    """:func:`handle_candle_events` under the batch lock, on the events as :func:`_decode` gave them."""
    checkpoint = pipeline.worker.checkpoint
    candles, origin, dead = decoded
    undecoded = len(dead)  # refused at decoding (a message, or a candle in it)
    dirty: dict[str, Any] = {}
    rejected = 0
    # A take of CandleBatch messages can hold tens of thousands of candles: steps of at most
    # STEP_MAX_CANDLES bound the records held at once, and the first outputs go out sooner.
    for start in range(0, len(candles), STEP_MAX_CANDLES) or [0]:
        chunk, chunk_origin = candles[start:start + STEP_MAX_CANDLES], origin[start:start + STEP_MAX_CANDLES]
        result, learner_for = await _step(pipeline, chunk, chunk_origin, busy=dirty)
        if result.redelivered:
            first = chunk[result.redelivered[0]]
            log.info("skipped %d redelivered candles already in their series (first %s %s@%d, read at %s)",
                     len(result.redelivered), first[0].symbol, first[0].timeframe, first[0].open_time, first[2])
        dead_here = [(chunk_origin[i], exc) for i, exc in result.rejected]
        rejected += len(dead_here)
        dead += dead_here  # sent with the batch's other refusals: one dead letter per message
        await _emit(pipeline, result, chunk_origin)
        await _emit_threshold_changes(pipeline, result)
        if len(chunk) >= SEND_NOW_MIN_CANDLES:
            send_now(pipeline.app.producer)
        # Learning comes after the outputs: the previous step's now, this one's after the next step's outputs
        # (or at the next checkpoint). A close arriving in several takes does not wait for River in between.
        await checkpoint.settle()
        if result.loop is not None:
            checkpoint.defer(functools.partial(_learn, pipeline, result.loop, learner_for, chunk_origin))
        dirty.update({key: chunk_origin[i] for key, i in result.dirty.items()})
        pipeline.stats.count(predictions=len(result.predictions), signals=len(result.signals))
    await _emit_dead(pipeline, dead)
    checkpoint.processed(events, dirty, {})
    # dead_letters counts refused inputs (candles, undecodable messages), not the records: candles = predictions + these
    pipeline.stats.count(candles=len(candles) + undecoded, dead_letters=undecoded + rejected, batches=1)


async def _step(pipeline: Pipeline, candles: list[SourcedCandle], origin: list[Any],
                busy: dict[str, Any]) -> tuple[BatchResult, Any]:
    """The pure step on ``candles`` up to its learning half, and the learner lookup that half needs;
    ``busy``: the series earlier steps of the same take changed (not handed to the checkpoint yet)."""
    worker, settings = pipeline.worker, pipeline.settings
    checkpoint = worker.checkpoint
    # Read the tables here, on the event loop, before any hand-off to a thread.
    checkpoint.load({series_key(c.symbol, c.timeframe) for c, _, _ in candles}, busy)
    learners = {p: learner_for_partition(pipeline, p) for p in {e.message.partition for e in origin}}
    learner_for = lambda i: learners[origin[i].message.partition]  # noqa: E731
    models = Models(worker.model, *(worker.candidate or (None, 0.0)), shadow=settings.ab_mode == "shadow",
                    chain=pipeline.serving_chain)
    config = StepConfig.from_settings(settings)
    started = time.perf_counter()
    result = await _in_thread_if_big(len(candles), functools.partial(
        process_batch, candles, checkpoint.series, models, config, learner_for, learn=False))
    if candles:
        pipeline.stats.inference_ms.add((time.perf_counter() - started) * 1000)
        pipeline.stats.batch_sizes.add(len(candles))
    return result, learner_for


async def _learn(pipeline: Pipeline, loop: LoopResult, learner_for: Any, origin: list[Any]) -> None:
    """A step's learning half (deferred by :func:`_handle_locked`): the partitions' learners learn its
    outcomes, the drift watches' retrain requests go out, the learners it taught are marked for the checkpoint.
    Only the loop's result is kept until then, not the step's prediction records."""
    await _in_thread_if_big(len(loop.unlearned), functools.partial(learn_outcomes, loop, learner_for))
    await emit_retrain_requests(pipeline, loop.retrain_requests)
    for key, i in loop.learners.items():
        pipeline.worker.checkpoint.learner_changed(key, origin[i])


async def _in_thread_if_big(size: int, work: Callable[[], Any]) -> Any:
    if size >= OFFLOAD_MIN_BATCH:  # a big batch would hold the event loop (heartbeats, web views)
        return await asyncio.get_running_loop().run_in_executor(None, work)
    return work()


async def _emit(pipeline: Pipeline, result: Any, origin: list[Any]) -> None:
    """Send one batch's outputs: a PredictionBatch and an OutcomeBatch per partition, one Signal per
    signal. Patterns are stored before this batch's signals ask for a consensus."""
    send, codecs, partition_of = pipeline.worker.checkpoint.send, pipeline.codecs, pipeline.partition_of
    for partition, records in _by_partition(result.predictions, partition_of):
        await send(pipeline.predictions.get_topic_name(), None, codecs["PredictionBatch"].encode({"predictions": records}),
                   partition)
    now_ms = time.time() * 1000
    pipeline.stats.end_to_end_ms.extend([now_ms - r["candle_produced_at"] for r in result.predictions if r["candle_produced_at"]])
    if result.outcomes:
        for partition, records in _by_partition(result.outcomes, partition_of):
            await send(pipeline.outcomes.get_topic_name(), None, codecs["OutcomeBatch"].encode({"outcomes": records}),
                       partition, [LABELS_ONLY_HEADER])
        await remember_patterns(pipeline, result.active_outcomes)  # each candle's aftermath once
    signals = pipeline.signals.get_topic_name()
    for record, i in zip(result.signals, result.signal_sources):
        if pipeline.worker.patterns is not None:
            record = await add_consensus(pipeline, record)
        await send(signals, record["symbol"].encode(), codecs["Signal"].encode(record))
        pipeline.recent_signals.add(record, origin[i])


async def _emit_threshold_changes(pipeline: Pipeline, result: BatchResult) -> None:
    """Adaptive signal threshold changes (learning/threshold.py): an event each, keyed by model version."""
    for change in result.threshold_events:
        log.info("signal threshold of %s in %s: %s -> %s (%s; hit rate %.3f over %d signals)", change["model_version"],
                 change["partition"], change["from"], change["to"], change["mode"], change["hit_rate"], change["signals"])
        pipeline.learning_history.event(time.time(), "threshold", f"{change['model_version']} {change['partition']}: "
                                        f"{change['from']} -> {change['to']} ({change['mode']})")
        await pipeline.worker.checkpoint.send(pipeline.threshold_changes.get_topic_name(),
                                              change["model_version"].encode(), json.dumps(change).encode())


async def _emit_dead(pipeline: Pipeline, dead: list[tuple[Any, InvalidInput]]) -> None:
    """One dead letter per refused message, with every reason its candles were refused for and its
    payload once (a megabyte of invalid candles must not become thousands of payload copies)."""
    by_event: dict[int, tuple[Any, list[InvalidInput]]] = {}
    for event, exc in dead:
        by_event.setdefault(id(event), (event, []))[1].append(exc)
    for event, errors in by_event.values():
        m, exc = event.message, combined(errors)
        log.warning("dead letter from %s[%d]@%d: %.300s", m.topic, m.partition, m.offset, exc)
        record = dead_letter_record(exc, m.topic, m.partition, m.offset, m.key, m.value)
        await pipeline.worker.checkpoint.send(pipeline.dead_letters.get_topic_name(), m.key,
                                              pipeline.codecs["DeadLetter"].encode(record))


def _by_partition(records: list[dict[str, Any]], partition_of: Any) -> list[tuple[int, list[dict[str, Any]]]]:
    """Records grouped by the partition their symbol's key maps to, in order, in chunks of at most
    RECORDS_PER_BATCH: one batch record each, well under Kafka's 1 MB message limit."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(partition_of(record["symbol"]), []).append(record)
    return [(p, chunk[i:i + RECORDS_PER_BATCH]) for p, chunk in groups.items() for i in range(0, len(chunk), RECORDS_PER_BATCH)]
