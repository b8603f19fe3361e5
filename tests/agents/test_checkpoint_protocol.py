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
:class:`agents.checkpoint.Checkpoint`; the simulated agent (``checkpoint_protocol_model.py``) does what ``agents.candles`` does
(step, send every output, learn the previous batch's outcomes, defer this batch's learning, hand over
the events); the learners are checkpointed and restored with the series, and must have learned every
outcome exactly once. A second protocol, the one the agent had before
(state written with the batch, outputs after, no position in the state), must fail the same check.
"""

from __future__ import annotations

import asyncio

import pytest

from agents.checkpoint import CheckpointFailed
from learning.learner import OutcomeLearner
from streams.series import Position
from streams.step import Models, StepConfig, process_batch
from tests.agents.checkpoint_protocol_model import (BATCH, PARTITIONS, Broker, Model, Worker, deliver_forever, ids,
                                                    input_messages, lost, run_with_crash, total_deliveries)


@pytest.fixture(scope="module")
def reference():
    worker, broker, _ = run_with_crash("outputs-first", None, "changelog")
    assert ids(broker, "signals") and ids(broker, "outcomes"), "a reference without signals or outcomes proves little"
    return worker, {kind: ids(broker, kind) for kind in ("predictions", "signals", "outcomes")}


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
