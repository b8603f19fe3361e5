"""The checkpoint protocol without a broker: a crash after every possible prefix of delivered records.

The producer is modelled as one FIFO per topic partition (Kafka keeps order within a partition, not
across them); a scheduler delivers the head of one FIFO at a time, by a policy (changelog first: the
order that lost predictions before; outputs first; seeded random orders). For a crash after every
number of deliveries, recovery starts from what was delivered — the changelog (a fresh worker, or the
memory store) or the local store (a restart on the same RocksDB directory) — and the committed offsets;
the uncommitted input is redelivered. Every expected prediction, signal and outcome id must exist
somewhere in the two runs, the final features must equal a run without a crash, and nothing may be
refused as out of order.

The real pieces: :func:`streams.step.process_batch`, :class:`streams.series.SeriesState` and
:class:`agents.checkpoint.Checkpoint`; the simulated agent below does what ``agents.candles`` does
(step, send every output, learn the previous batch's outcomes, defer this batch's learning, hand over
the events); the learners are checkpointed and restored with the series, and must have learned every
outcome exactly once. A second protocol, the one the agent had before
(state written with the batch, outputs after, no position in the state), must fail the same check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from agents.checkpoint import Checkpoint, CheckpointFailed
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


@pytest.fixture(scope="module")
def reference():
    worker, broker, _ = run_with_crash("outputs-first", None, "changelog")
    assert ids(broker, "signals") and ids(broker, "outcomes"), "a reference without signals or outcomes proves little"
    return worker, {kind: ids(broker, kind) for kind in ("predictions", "signals", "outcomes")}


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


@pytest.mark.parametrize("policy, recover_from", [
    # changelog-first: the order that lost predictions; series-first: the same, and the series' changelog
    # ahead of the learners' (a learner restored behind its series missed or twice-learned outcomes)
    ("series-first", "changelog"), ("changelog-first", "local-store"),
    ("outputs-first", "changelog"), ("random-1", "local-store"),
])
def test_a_crash_after_any_prefix_of_deliveries_loses_nothing(reference, policy, recover_from):
    total = total_deliveries()
    failures = {k: p for k in range(total + 1) if (p := lost(reference, policy, k, recover_from))}
    assert not failures, f"{len(failures)} of {total + 1} crash points lose: {dict(list(failures.items())[:3])}"


def test_the_check_fails_the_order_the_agent_had_before(reference):
    """State sent with the batch ahead of the outputs, offsets committed once all was acked, no position in
    the state: a crash between the state's delivery and its prediction's must show as a loss."""
    total = total_deliveries()
    assert any(lost(reference, "changelog-first", k, "changelog", naive=True) for k in range(total + 1)), \
        "the old order passed: the check cannot fail"


def test_a_refused_output_stops_the_worker_before_any_state_or_offset_moves():
    """The broker refuses one prediction: the checkpoint writes no state, acknowledges no event and
    crashes the app (a later checkpoint would otherwise write a state covering the lost output)."""
    crashed: list[BaseException] = []

    async def scenario() -> tuple[Worker, Broker]:
        broker = Broker("outputs-first", None)
        worker = Worker(broker, {}, {}, naive=False)

        async def crash(exc: BaseException) -> None:
            crashed.append(exc)

        worker.checkpoint.app.crash = crash
        await worker.batch(input_messages()[:BATCH])
        refused, _ = next(fifo for tp, fifo in sorted(broker.fifos.items()) if tp[0] == "predictions" and fifo).pop(0)
        refused.set_exception(OSError("NotEnoughReplicas"))
        while broker.deliver_one():
            pass
        with pytest.raises(CheckpointFailed):
            await worker.checkpoint.run()
        while broker.deliver_one():
            pass
        return worker, broker

    worker, broker = asyncio.run(scenario())
    assert len(crashed) == 1 and isinstance(crashed[0], OSError)
    assert ("series-changelog", 0) not in broker.log and ("series-changelog", 1) not in broker.log
    assert not worker.checkpoint.series_table.data
    assert worker.stream.committed == {}


def test_deferred_learning_runs_before_the_learners_are_written_and_goes_with_an_abandoned_batch():
    """A batch's learning waits behind the next batch's outputs; a checkpoint runs what still waits before
    it takes the learners' bytes (the learner written has learned every event it acknowledges), and a
    batch stopped half-way drops it with the live state (its events are learned where they are redelivered)."""

    async def scenario(abandon: bool) -> tuple[Worker, Broker]:
        broker = Broker("outputs-first", None)
        worker = Worker(broker, {}, {}, naive=False)
        delivery = asyncio.ensure_future(deliver_forever(broker))
        for n in range(0, 8 * BATCH, BATCH):
            await worker.batch(input_messages()[n:n + BATCH])
        if abandon:
            worker.checkpoint.abandon()
        await worker.checkpoint.run()
        delivery.cancel()
        return worker, broker

    from streams.series_book import SeriesBook

    book, learners = SeriesBook(), {p: OutcomeLearner({}) for p in range(PARTITIONS)}  # learning in the step
    for n in range(0, 8 * BATCH, BATCH):
        messages = input_messages()[n:n + BATCH]
        process_batch([(m.value, None, Position(m.topic, m.partition, m.offset)) for m in messages], book,
                      Models(Model()), StepConfig(0.2, outcome_loop=True), lambda i: (i, learners[messages[i].partition]))
    worker, broker = asyncio.run(scenario(abandon=False))
    written = {key: OutcomeLearner.from_bytes(blob) for (topic, _), records in broker.log.items()
               if topic == "learners-changelog" for key, blob in records}
    partitions = {m.partition for m in input_messages()[:8 * BATCH]}
    assert written.keys() == {f"partition-{p}".encode() for p in partitions}
    for p in partitions:
        learned = written[f"partition-{p}".encode()].accuracy.snapshot()
        assert learned == learners[p].accuracy.snapshot() and learned[0]["total_n"] > 0, p
    worker, broker = asyncio.run(scenario(abandon=True))
    assert not any(topic == "learners-changelog" for topic, _ in broker.log) and worker.checkpoint.completed == 0
    assert not worker.checkpoint._deferred


def test_deferred_learning_that_fails_stops_the_worker_before_any_state_or_offset_moves():
    crashed: list[BaseException] = []

    async def scenario() -> Worker:
        broker = Broker("outputs-first", None)
        worker = Worker(broker, {}, {}, naive=False)

        async def crash(exc: BaseException) -> None:
            crashed.append(exc)

        async def failing() -> None:
            raise ValueError("a bug in a drift watch")

        worker.checkpoint.app.crash = crash
        await worker.batch(input_messages()[:BATCH])
        worker.checkpoint.defer(failing)
        with pytest.raises(CheckpointFailed):
            await worker.checkpoint.run()
        await worker.checkpoint.run()  # abandoned: a later checkpoint writes nothing either
        return worker

    worker = asyncio.run(scenario())
    assert len(crashed) == 1 and isinstance(crashed[0], ValueError)
    assert worker.checkpoint.abandoned and worker.checkpoint.completed == 0 and worker.stream.committed == {}


def test_a_batch_stopped_half_way_leaves_no_state_and_no_acknowledgement():
    """A stop cancels the candle agent between its step (the live state moved) and its outputs: the
    agent abandons the checkpoint (agents/candles.py), after which nothing is written or acknowledged,
    not even the earlier batches' (they are redelivered and scored again with the same ids)."""

    async def scenario() -> tuple[Worker, Broker]:
        broker = Broker("outputs-first", None)
        worker = Worker(broker, {}, {}, naive=False)
        messages = input_messages()
        await worker.batch(messages[:BATCH])  # done: outputs handed over, events pending
        worker.checkpoint.load({f"{m.value.symbol}|{m.value.timeframe}" for m in messages[BATCH:2 * BATCH]})
        process_batch([(m.value, None, Position(m.topic, m.partition, m.offset)) for m in messages[BATCH:2 * BATCH]],
                      worker.checkpoint.series, Models(Model()), StepConfig(0.2))  # the step ran, then the stop came
        worker.checkpoint.abandon()
        await worker.checkpoint.run()
        while broker.deliver_one():
            pass
        return worker, broker

    worker, broker = asyncio.run(scenario())
    assert not any(topic == "series-changelog" for topic, _ in broker.log) and not worker.checkpoint.series_table.data
    assert worker.stream.committed == {} and worker.checkpoint.completed == 0
    assert len(worker.checkpoint.series) == 0  # the live state is gone with it


@pytest.mark.parametrize("crash_at", [None, 0.3, 0.6, 0.9])
def test_a_live_book_smaller_than_the_series_changes_nothing(reference, crash_at):
    """The LRU of live series with write-back: one live series for three, so every checkpoint drops the
    written ones and the next batch reads them back from the table. Outputs and features equal the
    reference's, with a crash or without, and the series did leave the book and come back."""
    crash_after = None if crash_at is None else int(total_deliveries() * crash_at)
    assert lost(reference, "outputs-first", crash_after, "changelog", max_live=1) == []
    worker = lost.last_worker
    assert worker.evicted > 0, "no series was read back after leaving the live book: the bound was never hit"


def test_series_a_running_checkpoint_has_not_written_yet_never_leave_the_book():
    """Making room for new series (load) while a checkpoint waits for its outputs' acks: the series it is
    writing are not in the table yet, so dropping one would let a later read bring back an older state."""
    async def scenario() -> None:
        broker = Broker("outputs-first", None)
        worker = Worker(broker, {}, {}, naive=False, max_live=1)
        messages = list(input_messages())[:12]
        await worker.batch(messages)
        changed = set(worker.checkpoint.series)
        assert len(changed) >= 2
        running = asyncio.ensure_future(worker.checkpoint.run())
        for _ in range(5):
            await asyncio.sleep(0)  # the checkpoint encodes, sends its state... and waits for the acks
        assert not running.done() and worker.checkpoint._writing == changed
        worker.checkpoint.load({"NEW-SYMBOL|5m"})
        assert changed <= set(worker.checkpoint.series), "a series the checkpoint has not written left the book"
        while not running.done():
            broker.deliver_one()
            await asyncio.sleep(0)
        running.result()
        worker.checkpoint.load({"OTHER-SYMBOL|5m"})  # written now: room can be made
        assert len(worker.checkpoint.series) == 1

    asyncio.run(scenario())


def test_a_batch_during_a_checkpoint_never_reaches_that_checkpoint_s_state():
    """The checkpoint encodes its series a chunk per hold of the batch lock, so a batch can run in between.
    Forced here: the next batch runs right after the checkpoint took its events and before it encodes.
    Every state it writes must be as of the events it acknowledges (as its learners are), never newer:
    a newer one, restored after a crash, would skip redelivered candles whose outcomes the learner restored
    with it never learned (a failover run gave other probabilities than a run without failure)."""
    from streams.series import SeriesState

    messages = list(input_messages())
    first, during = messages[:2 * BATCH], messages[2 * BATCH:3 * BATCH]
    touched = {f"{m.value.symbol}|5m" for m in first} & {f"{m.value.symbol}|5m" for m in during}
    assert touched, "the batch during the checkpoint must change series the checkpoint writes"

    async def scenario() -> tuple[Broker, Worker]:
        broker = Broker("outputs-first", None)
        worker = Worker(broker, {}, {}, naive=False)
        delivery = asyncio.ensure_future(deliver_forever(broker))
        await worker.batch(first)
        encode = worker.checkpoint._encode

        async def a_batch_then_encode(dirty):
            async with worker.checkpoint.batch_lock:  # as the candle agent runs a batch
                await worker.batch(during)
            return await encode(dirty)

        worker.checkpoint._encode = a_batch_then_encode
        await worker.checkpoint.run()
        delivery.cancel()
        return broker, worker

    broker, worker = asyncio.run(scenario())
    written = {key.decode(): SeriesState.from_bytes(blob) for (topic, _), records in broker.log.items()
               if topic == "series-changelog" for key, blob in records}
    assert touched <= set(written)
    last_acked = {}  # series -> the last offset of its candles among the acknowledged events
    for m in first:
        last_acked[f"{m.value.symbol}|5m"] = m.offset
    for key, state in written.items():
        assert state.position.offset == last_acked[key], f"{key}: written at offset {state.position.offset}, " \
                                                         f"acknowledged up to {last_acked[key]}"
    assert all(m.offset < worker.stream.committed[m.partition] for m in first)
    assert not any(m.offset < worker.stream.committed.get(m.partition, 0) for m in during)
