"""A replay on several processes: the topic's partitions split between them, one merged report.

A series lives on the partition its symbol's key maps to, and each partition has its own learner
(labels, the online member, drift watches), so replays of disjoint partitions share no state: run side
by side they give the records one process gives (``tests/integration/test_replay_parallel.py`` compares
them record for record). Each process reads its partitions with its own consumer, loads the model, follows
``model-events`` and runs :func:`candleflow.replay.replay`; a JSON-lines output is written as sorted parts
and merged; a topic output is sent by every process; kept records come back to the caller. The batch step
is CPU-bound Python, so this is how a replay uses more than one core (``candleflow replay --workers N``;
by default one per core and per 75,000 candles, at most one per partition).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import CandleflowError, ConfigError
from candleflow.replay.run import ReplayReport
from candleflow.replay.output import JsonlFile, KeptRecords, NoRecords, ReplayOutput, Tee, TopicOutput, merge_parts
from core.settings import Settings

__all__ = ["ReplayOutputs", "default_workers", "estimated_candles", "replay_in_processes", "topic_partitions"]

_COUNTS = ("candles", "predicted", "signalled", "dead_letters", "warmup_candles")


@dataclass(frozen=True)
class ReplayOutputs:
    """Where a replay's records go, as something a process can be told: a JSON-lines file, topics under
    a prefix, kept in memory for the caller; none of them: counted only."""

    out: Path | None = None
    to_topics: str | None = None
    keep: bool = False

    def build(self, settings: Settings, part: Path | None = None) -> ReplayOutput:
        """The output of one replay; ``part``: the keyed part file it writes instead of ``out``."""
        outputs: list[ReplayOutput] = []
        if self.out is not None:
            outputs.append(JsonlFile(part, keyed=True) if part is not None else JsonlFile(self.out))
        if self.to_topics:
            outputs.append(TopicOutput(settings, self.to_topics))
        if self.keep:
            outputs.append(KeptRecords())
        return Tee(*outputs) if len(outputs) > 1 else outputs[0] if outputs else NoRecords()


# A process costs ~3 s to start (imports, the model, its consumer) and one replays ~10,000 candles/s here:
# two beat one from ~75,000 candles on (measured: 11,520 candles took 2.1 s in one process, 5.5 s in two).
CANDLES_PER_PROCESS = 75_000
CANDLE_BYTES = 62  # an Avro candle in a message, framing shared (a Candle message is 67, in a CandleBatch 62)


def default_workers(partitions: int, candles: int | None = None) -> int:
    """One process per ``CANDLES_PER_PROCESS`` candles (``candles``: an estimate, None: unknown, as many as
    allowed), one per core at most, and at most one per partition.

    >>> default_workers(4, 11_520), default_workers(4, 10**6) == min(os.cpu_count() or 1, 4)
    (1, True)
    """
    wanted = partitions if candles is None else candles // CANDLES_PER_PROCESS
    return max(1, min(os.cpu_count() or 1, partitions, wanted))


async def estimated_candles(settings: Settings, topic: str, timeout_s: float = 5.0) -> int | None:
    """About how many candles ``topic`` holds: its messages (each partition's high-water mark, as fetch
    responses report it: Tansu's ListOffsets answers low after batched produces) times the mean size of the
    first messages, over :data:`CANDLE_BYTES`. None when the broker did not say in ``timeout_s``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from kafka_io.security import aiokafka_security

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker.bootstrap, group_id=None, enable_auto_commit=False,
                                **aiokafka_security(settings))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in topic_partitions(settings, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        sizes: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
        deadline = time.monotonic() + timeout_s
        def known(tp: TopicPartition) -> bool:  # its high-water mark, and a sample unless it is empty
            high = consumer.highwater(tp)
            return high is not None and (high == 0 or bool(sizes[tp]))

        while not all(map(known, tps)) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(*tps, timeout_ms=200, max_records=200)).items():
                sizes[tp] += [len(r.value or b"") for r in records]
        if any(consumer.highwater(tp) is None for tp in tps):
            return None
        sampled = [n for s in sizes.values() for n in s]
        overall = sum(sampled) / len(sampled) if sampled else 0.0
        # per partition: its messages times the mean size of its sampled ones (partitions differ in symbols)
        return int(sum(consumer.highwater(tp) * (sum(s) / len(s) if s else overall) for tp, s in sizes.items())
                   / CANDLE_BYTES)
    finally:
        await consumer.stop()


def topic_partitions(settings: Settings, topic: str, timeout_s: float = 15.0) -> list[int]:
    """The partition ids of ``topic``; ConfigError if it does not exist."""
    from confluent_kafka.admin import AdminClient

    from kafka_io.security import confluent_security

    admin = AdminClient({"bootstrap.servers": settings.broker.bootstrap, **confluent_security(settings)})
    meta = admin.list_topics(timeout=timeout_s).topics.get(topic)  # all topics: asking for one may create it
    if meta is None or meta.error is not None or not meta.partitions:
        raise ConfigError(f"topic {topic!r} does not exist")
    return sorted(meta.partitions)


def _kept(output: ReplayOutput) -> KeptRecords | None:
    if isinstance(output, KeptRecords):
        return output
    if isinstance(output, Tee):
        return next((o for o in output.outputs if isinstance(o, KeptRecords)), None)
    return None


def _child(index: int, settings: Settings, model_dir: Path, topic: str, partitions: list[int],
           outputs: ReplayOutputs, part: Path | None, options: dict[str, Any], messages: Any) -> None:
    """One process's replay of ``partitions``; its summary (or its error) goes to ``messages``."""
    try:
        from models.loading import load_model, serving_threads
        from candleflow.replay.run import replay

        serving_threads()
        output = outputs.build(settings, part)
        report = asyncio.run(replay(settings, load_model(model_dir, tree_runtime=settings.tree_runtime), topic, partitions=partitions, output=output,
                                    progress=False, on_messages=lambda n: messages.put(("progress", index, n)),
                                    **options))
        summary = {name: getattr(report, name) for name in (*_COUNTS, "first_open_time", "last_open_time",
                                                             "read_from_start", "deployments")}
        kept = _kept(output)
        if kept is not None:
            summary["kept"] = (kept.predictions, kept.signals)
        messages.put(("done", index, summary))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent, which raises it
        messages.put(("failed", index, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))


def replay_in_processes(settings: Settings, model_dir: Path, topic: str, *, workers: int,
                        outputs: ReplayOutputs = ReplayOutputs(), progress: bool = True, **options: Any) -> ReplayReport:
    """:func:`candleflow.replay.replay` of ``topic`` on ``workers`` processes (``options``: its range and
    switches); one report, its records where ``outputs`` says."""
    from tqdm import tqdm

    if workers < 1:
        raise ConfigError(f"a replay needs at least one worker process, got {workers}")
    started = time.monotonic()
    ids = topic_partitions(settings, topic)
    groups = [g for g in (ids[i::workers] for i in range(workers)) if g]
    parts = [outputs.out.with_name(f".{outputs.out.name}.part{i}") if outputs.out is not None else None
             for i in range(len(groups))]
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads (ONNX Runtime, Kafka)
    messages = context.Queue()
    processes = [context.Process(target=_child, daemon=True, name=f"replay-{i}",
                                 args=(i, settings, model_dir, topic, group, outputs, parts[i], options, messages))
                 for i, group in enumerate(groups)]
    summaries: dict[int, dict[str, Any]] = {}
    bar = tqdm(unit="msg", desc=f"replay ({len(groups)} processes)", disable=not progress)
    try:
        for p in processes:
            p.start()
        while len(summaries) < len(processes):
            try:
                kind, index, body = messages.get(timeout=1.0)
            except queue.Empty:
                dead = [p.name for i, p in enumerate(processes) if i not in summaries and p.exitcode is not None]
                if dead:
                    raise CandleflowError(f"replay process {dead[0]} ended without a result") from None
                continue
            if kind == "progress":
                bar.update(body)
            elif kind == "failed":
                raise CandleflowError(f"replay of partitions {groups[index]} failed: {body}")
            else:
                summaries[index] = body
        if outputs.out is not None:
            merge_parts(outputs.out, [p for p in parts if p is not None])
    finally:
        bar.close()
        for p in processes:
            if p.pid is None:  # never started
                continue
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
        for part in parts:
            if part is not None:
                part.unlink(missing_ok=True)
    return _merged(summaries, options, outputs, time.monotonic() - started)


def _merged(summaries: dict[int, dict[str, Any]], options: dict[str, Any], outputs: ReplayOutputs,
            elapsed_s: float) -> ReplayReport:
    timed = options.get("from_time") is not None or options.get("to_time") is not None
    by = ("message_time" if options.get("by_message_time") else "candle_time") if timed else "offset"
    kept = KeptRecords() if outputs.keep else NoRecords()
    report = ReplayReport(by=by, from_time=options.get("from_time"), to_time=options.get("to_time"), output=kept)
    for _, s in sorted(summaries.items()):
        for name in _COUNTS:
            setattr(report, name, getattr(report, name) + s[name])
        for t in (s["first_open_time"], s["last_open_time"]):
            if t is not None:
                report.saw(t)
        report.read_from_start = report.read_from_start and s["read_from_start"]
        report.deployments = max(report.deployments, s["deployments"])
        if isinstance(kept, KeptRecords):
            kept.add("prediction", s["kept"][0])
            kept.add("signal", s["kept"][1])
    report.elapsed_s = elapsed_s
    return report
