"""The world of the checkpoint protocol test (``test_checkpoint_protocol.py``), without a broker: the
producer as one FIFO per topic partition delivered by a policy, the tables and their stores, the stream
with its committed offsets, and a worker doing what ``agents.candles`` does around the real step and the
real :class:`agents.checkpoint.Checkpoint`; :func:`run_with_crash` runs it to a crash and recovers, and
:func:`lost` says what a recovered run lost against the run without a crash."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.checkpoint import Checkpoint
from learning.learner import OutcomeLearner
from core.candle_files import read_candle_file
from streams.series import Position
from learning.loop import learn_outcomes
from streams.step import Models, StepConfig, process_batch
from models.base import SingleHorizonModel
from tests.conftest import CANDLES

PARTITIONS = 2
TOPIC = "candles.5m"
BATCH = 3  # messages per agent batch
CHECKPOINT_EVERY = 2  # batches


class Model(SingleHorizonModel):
    """Deterministic and feature-dependent, so a wrong state gives a different prediction."""

    version, horizon = "m1", 1

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.nan_to_num(rows[:, 13]) * 50.0))


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: Any
    timestamp: float = 0.0


class Event:
    def __init__(self, message: Message) -> None:
        self.message = message


class Crash(Exception):
    pass


class Broker:
    """FIFOs of records sent but not yet delivered; ``log`` is what was delivered, per topic partition."""

    def __init__(self, policy: str, crash_after: int | None) -> None:
        self.fifos: dict[tuple[str, int], list[tuple[asyncio.Future, Any]]] = {}
        self.log: dict[tuple[str, int], list[Any]] = {}
        self.delivered, self.crash_after, self.policy = 0, crash_after, policy
        self.rng = random.Random(policy)
        self.crashed = False

    def send(self, topic: str, partition: int, record: Any) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.fifos.setdefault((topic, partition), []).append((future, record))
        return future

    def deliver_one(self) -> bool:
        ready = sorted(tp for tp, fifo in self.fifos.items() if fifo)
        if not ready:
            return False
        if self.crash_after is not None and self.delivered >= self.crash_after:
            self.crashed = True
            raise Crash()
        if self.policy == "changelog-first":
            ready.sort(key=lambda tp: not tp[0].endswith("changelog"))
        elif self.policy == "outputs-first":
            ready.sort(key=lambda tp: tp[0].endswith("changelog"))
        elif self.policy == "series-first":  # the series' changelog ahead of the learners' (and of the outputs)
            ready.sort(key=lambda tp: (tp[0] != "series-changelog", not tp[0].endswith("changelog")))
        else:
            self.rng.shuffle(ready)
        future, record = self.fifos[ready[0]].pop(0)
        self.log.setdefault(ready[0], []).append(record)
        self.delivered += 1
        future.set_result(None)
        return True


class Producer:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def send(self, topic, key, value, partition, timestamp, headers):
        return self.broker.send(topic, zlib.crc32(key) % PARTITIONS if partition is None else partition, (key, value))


class Table(dict):
    """A table: ``data`` is the local store; its changelog topic is ``<name>-changelog``."""

    def __init__(self, name: str, broker: Broker, store: dict) -> None:
        super().__init__()
        self.name, self.broker, self.data = name, broker, store
        self.changelog_topic = type("Topic", (), {"get_topic_name": lambda _: f"{name}-changelog"})()

    def get(self, key, default=None):
        return self.data.get(key, default)


class Stream:
    def __init__(self) -> None:
        self.committed: dict[int, int] = {}  # partition -> next offset to read (acked = committed: the worst case)

    async def ack(self, event: Event) -> None:
        m = event.message
        self.committed[m.partition] = max(self.committed.get(m.partition, 0), m.offset + 1)


@functools.lru_cache(maxsize=1)
def input_messages() -> list[Message]:
    """Real candles of three series, keyed by symbol, one candle per message."""
    files = sorted(CANDLES.glob("*.csv.gz"))
    candles = []
    for source, suffixes in zip(files[:2], (("", "-X"), ("",))):  # three series over two partitions
        series = read_candle_file(source).candles[:37]  # past warm-up (34): signals too
        candles += [dataclasses.replace(c, symbol=c.symbol + suffix) for suffix in suffixes for c in series]
    candles.sort(key=lambda c: (c.open_time, c.symbol))
    offsets = [0] * PARTITIONS
    messages = []
    for c in candles:
        p = zlib.crc32(c.symbol.encode()) % PARTITIONS
        messages.append(Message(TOPIC, p, offsets[p], c.symbol.encode(), c))
        offsets[p] += 1
    return messages


class Worker:
    """The candle agent's order of work, on the fake broker."""

    def __init__(self, broker: Broker, series_store: dict, learner_store: dict, naive: bool, max_live: int = 10_000) -> None:
        app = type("App", (), {"producer": Producer(broker)})()
        self.checkpoint = Checkpoint(app, Table("series", broker, series_store), Table("learners", broker, learner_store), 1.0,
                                     max_live_series=max_live)
        self.evicted = 0
        self.checkpoint.stream = self.stream = Stream()
        self.broker, self.naive = broker, naive
        self.out_of_order = 0

    def learner(self, partition: int) -> tuple[str, OutcomeLearner]:
        key = f"partition-{partition}"
        if self.checkpoint.learners.get(key) is None:
            self.checkpoint.learners[key] = OutcomeLearner({})
        return key, self.checkpoint.learners[key]

    async def batch(self, messages: list[Message]) -> None:
        events = [Event(m) for m in messages]
        candles = [(m.value, None, None if self.naive else Position(m.topic, m.partition, m.offset)) for m in messages]
        keys = {f"{c.symbol}|{c.timeframe}" for c, _, _ in candles}
        self.evicted += len(keys - set(self.checkpoint.series) - {k for k in keys if k.encode() not in self.checkpoint.series_table.data})
        self.checkpoint.load(keys)
        learner_for = lambda i: self.learner(messages[i].partition)  # noqa: E731
        result = process_batch(candles, self.checkpoint.series, Models(Model()), StepConfig(0.2, outcome_loop=True),
                               learner_for, learn=self.naive)
        self.out_of_order += sum(1 for _, exc in result.rejected if exc.kind == "out_of_order")
        dirty = {key: events[i] for key, i in result.dirty.items()}
        if self.naive:  # the old order: the state goes out with the batch, ahead of the outputs
            for key, event in dirty.items():
                blob = self.checkpoint.series.state(key).to_bytes()
                self.checkpoint._outputs.append(await self.checkpoint.app.producer.send(  # offsets were committed
                    "series-changelog", key.encode(), blob, event.message.partition, None, None))  # once all was acked
                self.checkpoint.series_table.data[key.encode()] = blob
        for kind, records in (("predictions", result.predictions), ("signals", result.signals), ("outcomes", result.outcomes)):
            for r in records:
                await self.checkpoint.send(kind, r["symbol"].encode(), r["id"])
        if not self.naive:  # the agent's order: the last batch's learning behind this one's outputs, this one's deferred
            await self.checkpoint.settle()
            if result.loop is not None:  # None: nothing new in the batch
                self.checkpoint.defer(functools.partial(self.learn, result.loop, learner_for, events))
        self.checkpoint.processed(events, {} if self.naive else dirty, {})

    async def learn(self, loop: Any, learner_for: Any, events: list[Event]) -> None:
        learn_outcomes(loop, learner_for)
        for key, i in loop.learners.items():
            self.checkpoint.learner_changed(key, events[i])

    async def run(self, messages: list[Message]) -> None:
        """Batches of the uncommitted messages, a checkpoint every few; the broker delivers meanwhile."""
        todo = [m for m in messages if m.offset >= self.stream.committed.get(m.partition, 0)]
        for n in range(0, len(todo), BATCH):
            await self.batch(todo[n:n + BATCH])
            if n // BATCH % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                await self.checkpoint.run()
        await self.checkpoint.run()


async def deliver_forever(broker: Broker) -> None:
    while True:
        if not broker.deliver_one():
            await asyncio.sleep(0)
        await asyncio.sleep(0)


async def drive(worker: Worker, messages: list[Message]) -> None:
    """Run the worker while the broker delivers; a Crash in the delivery ends both at once."""
    delivery = asyncio.ensure_future(deliver_forever(worker.broker))
    work = asyncio.ensure_future(worker.run(messages))
    done, _ = await asyncio.wait({delivery, work}, return_when=asyncio.FIRST_COMPLETED)
    if work in done:
        work.result()
        try:
            while worker.broker.deliver_one():  # the rest of what was sent
                pass
        except Crash:
            pass
    for task in (delivery, work):
        task.cancel()
    await asyncio.gather(delivery, work, return_exceptions=True)


def ids(broker: Broker, kind: str) -> set[str]:
    return {value for (topic, _), records in broker.log.items() if topic == kind for _, value in records}


def run_with_crash(policy: str, crash_after: int | None, recover_from: str, naive: bool = False, max_live: int = 10_000):
    messages = list(input_messages())
    broker = Broker(policy, crash_after)
    local_series: dict = {}
    local_learners: dict = {}
    first = Worker(broker, local_series, local_learners, naive, max_live)
    asyncio.run(drive(first, messages))
    if not broker.crashed:
        return first, broker, broker
    # What survives: the delivered changelogs (or the local stores of a restart on the same directory).
    if recover_from == "changelog":
        restored, learners = ({key: value for (topic, _), records in broker.log.items() if topic == f"{table}-changelog"
                               for key, value in records} for table in ("series", "learners"))
    else:
        restored, learners = dict(local_series), dict(local_learners)
    again = Broker(policy, None)
    second = Worker(again, restored, learners, naive, max_live)
    second.stream.committed = dict(first.stream.committed)
    asyncio.run(drive(second, messages))
    second.out_of_order += first.out_of_order
    return second, broker, again


def lost(reference, policy: str, crash_after: int | None, recover_from: str, naive: bool = False,
         max_live: int = 10_000) -> list[str]:
    ref_worker, expected = reference
    worker, before, after = run_with_crash(policy, crash_after, recover_from, naive, max_live)
    lost.last_worker = worker
    problems = [f"{len(expected[k] - (ids(before, k) | ids(after, k)))} {k} lost"
                for k in expected if expected[k] - (ids(before, k) | ids(after, k))]
    if worker.out_of_order:
        problems.append(f"{worker.out_of_order} refused as out of order")
    for key in ref_worker.checkpoint.series:
        worker.checkpoint.load({key})
        if worker.checkpoint.series.state(key).features.to_bytes() != ref_worker.checkpoint.series.state(key).features.to_bytes():
            problems.append(f"features of {key} differ")
    for partition in range(PARTITIONS):  # every outcome learned once: none lost with a learner, none twice
        if worker.learner(partition)[1].accuracy.snapshot() != ref_worker.learner(partition)[1].accuracy.snapshot():
            problems.append(f"the learner of partition {partition} differs")
    return problems


@functools.lru_cache(maxsize=1)
def total_deliveries() -> int:
    _, broker, _ = run_with_crash("outputs-first", None, "changelog")
    return broker.delivered
