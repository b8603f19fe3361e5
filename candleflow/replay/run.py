"""Replay a range of a candle topic through the pipeline's own logic, as a deterministic backtest.

The replay reads the range with its own consumer (no consumer group, no changelogs: live state is
never touched) and runs the candle agent's code path, :func:`~streams.ingest.decode_candle_message`
and the batch step :func:`~streams.step.process_batch` with a learner per partition (labelling, the
online member, drift watches), without pacing. By default the series and learners are first warmed up on
everything before the range (scored, not emitted), so the output equals what a live worker that consumed
the topic from its start produced for those candles; ``warmup=False`` starts cold.

The range is of candle open times (a backtest's "January 25th"), of offsets, or of message times
(:mod:`candleflow.replay.window`). Each candle is scored with the models that served when its message was
produced — the active model and any A/B candidate, split or shadow, as ``model-events`` said
(:class:`models.deployment.DeploymentTimeline`) — unless the replay is pinned to one model. The
clock-skew refusal of future candles is judged against the message time, as the live worker judged
it when the message arrived, so a replay gives the same result whenever it runs.

Where the range ends is read from fetch responses (the partition's high-water mark), not from a
ListOffsets request: some brokers (Tansu) answer ListOffsets wrongly after batched produces.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from learning.learner import OutcomeLearner, partition_key
from models.deployment import DeploymentTimeline, Slot
from schemas import MultiCodec, schema_store
from core.errors import CandleflowError, ConfigError, InvalidInput
from core.candle_messages import decode_candle_message
from kafka_io.security import aiokafka_security
from candleflow.replay.output import KeptRecords, ReplayOutput
from candleflow.replay.window import ReplayWindow, resolve_window
from core.timestamps import format_time
from models.base import ServableModel
from streams.series import Position
from streams.series_book import SeriesBook
from core.settings import Settings
from streams.step import Models, SourcedCandle, StepConfig, process_batch

__all__ = ["ReplayReport", "ServingTimeline", "replay"]

log = logging.getLogger(__name__)

# A take (up to 5,000 CandleBatch messages: up to 250,000 candles) is stepped in chunks of this many candles:
# 1,000 / 4,096 / 16,384 / all at once gave 8,179 / 8,900 / 8,591 / 7,088 candles/s on 2,000 x 150 closes.
STEP_CANDLES = 4096


@dataclass
class ReplayReport:
    candles: int = 0
    predicted: int = 0  # predictions and signals of the range, handed to ``output``
    signalled: int = 0
    dead_letters: int = 0
    warmup_candles: int = 0
    elapsed_s: float = 0.0
    by: str = "offset"
    from_time: int | None = None
    to_time: int | None = None
    first_open_time: int | None = None  # of every candle read (in the range or not)
    last_open_time: int | None = None
    read_from_start: bool = True  # every partition was read from its first message
    deployments: int = 0  # model-events changes the replay followed (0: one model throughout)
    output: ReplayOutput = field(default_factory=KeptRecords)

    def __repr__(self) -> str:
        # Short: asyncio.run formats the main task's result when it restores the SIGINT handler
        # (the handler is a partial holding the task), and kept records would take a second to print.
        return f"ReplayReport(candles={self.candles}, predicted={self.predicted}, signalled={self.signalled}, by={self.by!r})"

    @property
    def predictions(self) -> list[dict[str, Any]]:
        """The range's predictions, where the replay kept them (:class:`~candleflow.replay.output.KeptRecords`)."""
        return self._kept().predictions

    @property
    def signals(self) -> list[dict[str, Any]]:
        return self._kept().signals

    def _kept(self) -> KeptRecords:
        if not isinstance(self.output, KeptRecords):
            raise ConfigError(f"this replay sent its records to {type(self.output).__name__}, it did not keep them")
        return self.output

    @property
    def candles_per_s(self) -> float:
        return (self.candles + self.warmup_candles) / self.elapsed_s if self.elapsed_s else 0.0

    def saw(self, open_time: int) -> None:
        self.first_open_time = open_time if self.first_open_time is None else min(self.first_open_time, open_time)
        self.last_open_time = open_time if self.last_open_time is None else max(self.last_open_time, open_time)

    def notes(self) -> list[str]:
        """What a user should know about the range beside the counts: empty, or cut by the topic's ends."""
        span = (f"its candles open from {format_time(self.first_open_time)} to {format_time(self.last_open_time)}"
                if self.first_open_time is not None else "it holds no valid candle")
        if self.candles == 0:
            return [f"nothing replayed: no candle of the topic is in the range; {span}"]
        notes = []
        if self.by == "candle_time" and self.read_from_start and self.from_time is not None \
                and self.first_open_time is not None and self.from_time < self.first_open_time:
            notes.append(f"the range starts before the topic's first candle: it really starts at "
                         f"{format_time(self.first_open_time)}")
        if self.by == "candle_time" and self.to_time is not None and self.last_open_time is not None \
                and self.to_time > self.last_open_time + 1:
            notes.append(f"the range ends after the topic's last candle ({format_time(self.last_open_time)})")
        return notes


class ServingTimeline:
    """The :class:`~streams.step.Models` of each candle by its message time: the replay's starting model,
    replaced as ``timeline`` says (loaded once per version; one that fails to load leaves the models before
    it serving, as in a worker). ``timeline=None``: pinned to ``model``. Without a ``chain`` (the default)
    the full models score every candle, whatever the latency budget: a backtest stays deterministic; with
    one (:class:`streams.serving_chain.ServingChain`), batches over its budget go to the students as live."""

    def __init__(self, model: Any, timeline: DeploymentTimeline | None, shadow: bool, chain: Any = None,
                 tree_runtime: str = "auto") -> None:
        self.model, self.timeline, self.shadow, self.chain = model, timeline, shadow, chain
        self.tree_runtime = tree_runtime  # the worker's setting: the same runtime as live
        self._loaded: dict[str, Any] = {}
        self._models: dict[tuple[Slot | None, Slot | None], Models] = {}
        self.pinned = Models(model, chain=chain)

    def at(self, ms: int | None) -> Models:
        if self.timeline is None or not len(self.timeline):
            return self.pinned
        slots = self.timeline.at(ms)
        if slots not in self._models:
            active, candidate = (self._load(slot) if slot is not None else None for slot in slots)
            share = slots[1].share if candidate is not None else 0.0
            self._models[slots] = Models(active if active is not None else self.model, candidate, share, shadow=self.shadow,
                                         chain=self.chain)
        return self._models[slots]

    def _load(self, slot: Slot) -> Any:
        from models.loading import load_model

        if slot.version not in self._loaded:
            try:
                self._loaded[slot.version] = load_model(Path(slot.artifact_dir), tree_runtime=self.tree_runtime)
            except CandleflowError as exc:
                log.error("replay cannot load %s from %s: %s", slot.version, slot.artifact_dir, exc)
                self._loaded[slot.version] = None
        return self._loaded[slot.version]


async def replay(settings: Settings, model: ServableModel, topic: str, *, from_offset: int | None = None,
                 from_time: int | None = None, to_offset: int | None = None, to_time: int | None = None,
                 by_message_time: bool = False, warmup: bool = True, follow_deployments: bool = True,
                 progress: bool = True, idle_timeout_s: float = 10.0, output: ReplayOutput | None = None,
                 partitions: Collection[int] | None = None,
                 on_messages: Callable[[int], None] | None = None, serving_chain: Any = None) -> ReplayReport:
    """Run the candle pipeline over a range of ``topic``; see the module docstring. Times select by
    candle open time (``[from_time, to_time)``) unless ``by_message_time``; without times, offsets.
    The range's records go to ``output`` as they are made (default: kept, ``report.predictions``).
    ``partitions``: only these (a series and its learner live on one partition, so replays of disjoint
    partitions are independent: :mod:`candleflow.replay.parallel` runs them side by side); ``on_messages(n)``
    after each take of ``n`` messages (progress reported elsewhere); ``serving_chain``: serve over a latency
    budget as a worker does (:class:`ServingTimeline`; default none: the full models, deterministic)."""
    from tqdm import tqdm

    timed = from_time is not None or to_time is not None
    if timed and (from_offset is not None or to_offset is not None):
        raise ConfigError("a replay range is of offsets or of times, not both")
    by = ("message_time" if by_message_time else "candle_time") if timed else "offset"
    codec = MultiCodec(["Candle", "CandleBatch"], schema_store(settings))
    timeframe = topic.rsplit(".", 1)[-1] if topic.startswith(settings.topic("candles.")) else None
    serving = ServingTimeline(model, await _deployments(settings) if follow_deployments else None,
                              shadow=settings.ab_mode == "shadow", chain=serving_chain,
                              tree_runtime=settings.tree_runtime)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=settings.broker.fetch_max_wait_ms, max_poll_records=5000, **aiokafka_security(settings))
    await consumer.start()
    report = ReplayReport(by=by, from_time=from_time, to_time=to_time, deployments=len(serving.timeline or ()),
                          output=output if output is not None else KeptRecords())
    book, learners = SeriesBook(), {}
    config = StepConfig.from_settings(settings)
    skew_ms = int(settings.max_clock_skew_s * 1000)
    started = time.monotonic()
    complete = False
    collecting = gc.isenabled()
    gc.disable()
    try:
        window = await resolve_window(consumer, topic, by, from_offset, to_offset, from_time, to_time, skew_ms)
        tps = {p: TopicPartition(topic, p) for p in window.start if partitions is None or p in partitions}
        consumer.assign(list(tps.values()))
        done: set[int] = set()
        for p, tp in tps.items():
            if warmup:
                await consumer.seek_to_beginning(tp)
            elif window.start[p] is None:
                done.add(p)  # nothing of the range can be there
            else:
                consumer.seek(tp, window.start[p])
        report.read_from_start = warmup or all(window.start[p] == 0 for p in tps)
        bar = tqdm(unit="msg", desc="replay", disable=not progress)
        last_data = time.monotonic()
        while len(done) < len(tps):
            batch = await consumer.getmany(*[tp for p, tp in tps.items() if p not in done], timeout_ms=200)
            for tp, messages in batch.items():
                learner = learners.get(tp.partition)
                if learner is None:
                    learner = learners[tp.partition] = (partition_key(tp.partition), OutcomeLearner())
                _replay_messages(messages, window, warmup, codec, timeframe, settings, skew_ms, serving, book,
                                 config, learner, report)
                bar.update(len(messages))
                if on_messages is not None:
                    on_messages(len(messages))
                # Series states and kept records only grow: the collector would scan them again and again
                # (a quarter of a 120,000-candle replay went to collections that found nothing). Collected
                # here instead, once a take, the young objects only; what survives is frozen out of later scans.
                gc.collect(1)
                gc.freeze()
            if batch:
                await report.output.drain()
                last_data = time.monotonic()
            for p, tp in tps.items():
                high = consumer.highwater(tp)
                stop = window.end[p] if window.end[p] is not None else high
                if high is not None and stop is not None and await consumer.position(tp) >= min(stop, high):
                    done.add(p)
            if not batch and time.monotonic() - last_data > idle_timeout_s:
                break  # a partition never answered with a high-water mark: stop rather than hang
        bar.close()
        complete = True
    finally:
        gc.unfreeze()
        if collecting:
            gc.enable()
        await consumer.stop()
        await report.output.close(complete)
    report.elapsed_s = time.monotonic() - started
    return report


async def _deployments(settings: Settings) -> DeploymentTimeline:
    from training.model_events import read_model_events

    return DeploymentTimeline(await read_model_events(settings, idle_s=0.5, timed=True))


def _replay_messages(messages: list[Any], window: ReplayWindow, warmup: bool, codec: MultiCodec, timeframe: str | None,
                     settings: Settings, skew_ms: int, serving: ServingTimeline, book: SeriesBook, config: StepConfig,
                     learner: tuple[str, OutcomeLearner], report: ReplayReport) -> None:
    """One partition's take of messages: decoded as the candle agent decodes them, then stepped in runs
    that share their models (a deployment change cuts a run), the range's outputs kept in ``report``."""
    runs: list[tuple[Models, list[SourcedCandle], list[bool]]] = []
    for m in messages:
        end = window.end[m.partition]  # by candle time always None: its end is a time
        if end is not None and m.offset >= end:
            break
        try:
            decoded = decode_candle_message(codec, m.value, timeframe, settings.max_message_bytes, m.timestamp + skew_ms)
        except InvalidInput:
            report.dead_letters += window.holds(m.partition, m.offset)
            continue
        models = serving.at(m.timestamp)
        if not runs or runs[-1][0] is not models:
            runs.append((models, [], []))
        for item in decoded:
            if isinstance(item, InvalidInput):
                report.dead_letters += window.holds(m.partition, m.offset)
                continue
            report.saw(item.open_time)
            if not warmup and window.before(m.partition, m.offset, item.open_time):
                continue
            runs[-1][1].append((item, m.timestamp, Position(m.topic, m.partition, m.offset)))
            runs[-1][2].append(window.emits(m.partition, m.offset, item.open_time))
    for models, candles, emit in runs:
        learner[1].arm_models([models.active, models.candidate])
        for start in range(0, len(candles), STEP_CANDLES):
            _step(candles[start:start + STEP_CANDLES], emit[start:start + STEP_CANDLES], models, book, config,
                  learner, report)


def _step(candles: list[SourcedCandle], emit: list[bool], models: Models, book: SeriesBook, config: StepConfig,
          learner: tuple[str, OutcomeLearner], report: ReplayReport) -> None:
    scored = process_batch(candles, book, models, config, lambda i: learner)
    report.dead_letters += sum(emit[i] for i, _ in scored.rejected)
    predictions = [r for r, i in zip(scored.predictions, scored.prediction_sources) if emit[i]]
    signals = [r for r, i in zip(scored.signals, scored.signal_sources) if emit[i]]
    report.predicted, report.signalled = report.predicted + len(predictions), report.signalled + len(signals)
    report.output.add("prediction", predictions)
    report.output.add("signal", signals)
    report.candles += sum(emit)
    report.warmup_candles += len(emit) - sum(emit)
