"""Replay a range of a candle topic through the pipeline's own logic, as a deterministic backtest.

The replay reads the range with its own consumer (no consumer group, no changelogs: live state is
never touched) and runs the candle agent's code path, :func:`~streams.ingest.decode_candle_message`
and the batch step :func:`~streams.step.process_batch` with a learner per partition (labelling, the
online member, drift watches), without pacing. By default the series and learners are first warmed up on
everything before the range (scored, not emitted), so the output equals what a live worker that consumed
the topic from its start produced for those candles; ``warmup=False`` starts cold.

Where the range ends is read from fetch responses (the partition's high-water mark), not from a
ListOffsets request: some brokers (Tansu) answer ListOffsets wrongly after batched produces.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import MultiCodec, store_from_url
from streams.candle import Candle
from streams.consumer import json_safe
from streams.errors import ConfigError, InvalidInput
from streams.ingest import decode_candle_message
from streams.kafka_security import aiokafka_security
from learning.learner import OutcomeLearner
from streams.scoring import ProbabilityModel
from streams.series import Position
from streams.series_book import SeriesBook
from streams.settings import Settings
from streams.step import Models, StepConfig, process_batch

__all__ = ["ReplayRange", "ReplayReport", "replay", "parse_time", "publish_report"]


def parse_time(text: str) -> int:
    """ISO-8601 time (UTC unless it says otherwise) to epoch milliseconds.

    >>> parse_time("2018-01-10T05:35:00Z")
    1515562500000
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        from datetime import timezone

        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class ReplayRange:
    """Offsets ``[start, end)`` of each partition (``end`` None: up to the end of the partition)."""

    topic: str
    start: dict[int, int]
    end: dict[int, int | None]


@dataclass
class ReplayReport:
    candles: int = 0
    predictions: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    warmup_candles: int = 0
    elapsed_s: float = 0.0

    @property
    def candles_per_s(self) -> float:
        return (self.candles + self.warmup_candles) / self.elapsed_s if self.elapsed_s else 0.0

    def write_jsonl(self, path: Path) -> None:
        """Predictions then signals, one JSON object a line, in a stable order (replays diff cleanly)."""
        with open(path, "w") as out:
            for kind, records in (("prediction", self.predictions), ("signal", self.signals)):
                for r in sorted(records, key=lambda r: (r["open_time"], r["symbol"], r["timeframe"])):
                    out.write(json.dumps({"kind": kind, **json_safe(r)}, sort_keys=True, separators=(",", ":")) + "\n")


async def resolve_range(consumer: AIOKafkaConsumer, topic: str, from_offset: int | None = None,
                        from_time: int | None = None, to_offset: int | None = None,
                        to_time: int | None = None, partitions: list[int] | None = None) -> ReplayRange:
    ids = consumer.partitions_for_topic(topic)
    if not ids:
        await consumer._client.force_metadata_update()
        ids = consumer.partitions_for_topic(topic)
    if not ids:
        raise ConfigError(f"topic {topic!r} does not exist")
    tps = [TopicPartition(topic, p) for p in sorted(ids) if partitions is None or p in partitions]

    async def at_time(ms: int | None, default: int | None) -> dict[int, int | None]:
        if ms is None:
            return {tp.partition: default for tp in tps}
        found = await consumer.offsets_for_times({tp: ms for tp in tps})
        return {tp.partition: (found[tp].offset if found.get(tp) else None) for tp in tps}

    start = {p: o if o is not None else 0 for p, o in (await at_time(from_time, from_offset or 0)).items()}
    end = await at_time(to_time, to_offset)
    return ReplayRange(topic, start, end)


async def replay(settings: Settings, model: ProbabilityModel, topic: str, *, from_offset: int | None = None,
                 from_time: int | None = None, to_offset: int | None = None, to_time: int | None = None,
                 warmup: bool = True, progress: bool = True, idle_timeout_s: float = 10.0) -> ReplayReport:
    """Run the candle pipeline over a range of ``topic``; see the module docstring."""
    from tqdm import tqdm

    codec = MultiCodec(["Candle", "CandleBatch"], store_from_url(settings.schema_registry_url or None))
    timeframe = topic.rsplit(".", 1)[-1] if topic.startswith(settings.topic("candles.")) else None
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker, group_id=None, enable_auto_commit=False, **aiokafka_security(settings),
                                fetch_max_wait_ms=settings.fetch_max_wait_ms, max_poll_records=5000)
    await consumer.start()
    report = ReplayReport()
    book, learners = SeriesBook(), {}
    config = StepConfig.from_settings(settings)
    started = time.monotonic()
    try:
        rng = await resolve_range(consumer, topic, from_offset, from_time, to_offset, to_time)
        tps = {p: TopicPartition(topic, p) for p in rng.start}
        consumer.assign(list(tps.values()))
        for p, tp in tps.items():
            if warmup:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, rng.start[p])
        done: set[int] = set()
        bar = tqdm(unit="msg", desc="replay", disable=not progress)
        last_data = time.monotonic()
        while len(done) < len(tps):
            batch = await consumer.getmany(timeout_ms=200)
            for tp, messages in batch.items():
                stop = rng.end[tp.partition]
                candles: list[tuple[Candle, int | None, Position]] = []
                emit: list[bool] = []
                learner = learners.get(tp.partition)
                if learner is None:
                    learner = learners[tp.partition] = OutcomeLearner()
                    learner.arm_models([model])
                for m in messages:
                    if stop is not None and m.offset >= stop:
                        break
                    in_range = m.offset >= rng.start[tp.partition]
                    try:
                        decoded = decode_candle_message(codec, m.value, timeframe, settings.max_message_bytes,
                                                        settings.latest_open_time())
                    except InvalidInput:
                        report.dead_letters += in_range
                        continue
                    for item in decoded:
                        if isinstance(item, InvalidInput):
                            report.dead_letters += in_range
                        else:
                            candles.append((item, m.timestamp, Position(m.topic, m.partition, m.offset)))
                            emit.append(in_range)
                scored = process_batch(candles, book, Models(model), config, lambda i, p=tp.partition: (p, learner))
                report.dead_letters += sum(emit[i] for i, _ in scored.rejected)
                report.predictions += [r for r, i in zip(scored.predictions, scored.prediction_sources) if emit[i]]
                report.signals += [r for r, i in zip(scored.signals, scored.signal_sources) if emit[i]]
                report.candles += sum(emit)
                report.warmup_candles += len(emit) - sum(emit)
                bar.update(len(messages))
            if batch:
                last_data = time.monotonic()
            for p, tp in tps.items():
                high = consumer.highwater(tp)
                stop = rng.end[p] if rng.end[p] is not None else high
                if high is not None and stop is not None and await consumer.position(tp) >= min(stop, high):
                    done.add(p)
            if not batch and time.monotonic() - last_data > idle_timeout_s:
                break  # a partition never answered with a high-water mark: stop rather than hang
        bar.close()
    finally:
        await consumer.stop()
    report.elapsed_s = time.monotonic() - started
    return report


async def publish_report(settings: Settings, report: ReplayReport, prefix: str) -> None:
    """Publish a replay's predictions and signals as Avro to ``<prefix>.predictions`` / ``<prefix>.signals``."""
    from aiokafka import AIOKafkaProducer

    from schemas import AvroCodec
    from streams.topics import TopicSpec, ensure_topics

    store = store_from_url(settings.schema_registry_url or None)
    targets = {"predictions": ("Prediction", report.predictions), "signals": ("Signal", report.signals)}
    ensure_topics(settings.broker, [TopicSpec(f"{prefix}.{name}", settings.partitions) for name in targets])
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker, linger_ms=5, **aiokafka_security(settings))
    await producer.start()
    try:
        for name, (schema, records) in targets.items():
            codec = AvroCodec(schema, store)
            for r in records:
                await producer.send(f"{prefix}.{name}", codec.encode(r), key=r["symbol"].encode())
        await producer.flush()
    finally:
        await producer.stop()
