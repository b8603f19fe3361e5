"""BufferedSink against a scripted writer: batching, backpressure, retries, rejects, safe offsets."""

from __future__ import annotations

import asyncio

import pytest

from storage.offsets import OffsetTracker
from storage.sink import BufferedSink
from core.errors import ConfigError, InvalidInput, Retryable


class FlakyWriter:
    """Stores records by id; fails while ``down``; refuses records whose id is in ``bad``."""

    def __init__(self) -> None:
        self.rows: dict[int, dict] = {}
        self.calls = 0
        self.down = False
        self.bad: set[int] = set()
        self.batch_sizes: list[int] = []

    async def __call__(self, records):
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise Retryable("database down")
        if any(r["id"] in self.bad for r in records):
            raise InvalidInput("refused")
        self.batch_sizes.append(len(records))
        for r in records:
            self.rows[r["id"]] = r


async def test_batches_by_size_and_by_time():
    writer = FlakyWriter()
    async with BufferedSink(writer, batch_size=10, flush_interval=0.05) as sink:
        for i in range(25):
            await sink.put({"id": i}, 0, i)
        await asyncio.sleep(0.2)  # the last 5 go when the oldest of them is 50 ms old, with no flush()
        assert sorted(writer.rows) == list(range(25))
        assert writer.batch_sizes[:2] == [10, 10] and sum(writer.batch_sizes) == 25
        assert sink.safe_offsets() == {0: 24}
        stats = sink.stats()
        assert stats["rows_written"] == 25 and stats["backlog"] == 0 and stats["healthy"]
        assert stats["batch_latency"]["p50_ms"] >= 0 and stats["row_latency"]["p99_ms"] >= 40


async def test_outage_backpressure_then_everything_exactly_once():
    writer = FlakyWriter()
    writer.down = True
    sink = BufferedSink(writer, batch_size=8, flush_interval=0.01, max_buffer=32, backoff_initial=0.01,
                        backoff_max=0.05)
    await sink.start()
    for i in range(32):
        await sink.put({"id": i}, i % 2, i // 2)
    blocked = asyncio.create_task(sink.put({"id": 32}, 0, 16))
    await asyncio.sleep(0.2)
    assert not blocked.done(), "a full buffer must make put() wait"
    stats = sink.stats()
    assert stats["backlog"] == 32 and not stats["healthy"] and stats["retries"] >= 2
    assert "database down" in stats["last_error"] and sink.safe_offsets() == {}

    writer.down = False
    await asyncio.wait_for(blocked, 2)
    for i in range(33, 40):
        await sink.put({"id": i}, i % 2, i // 2)
    await asyncio.wait_for(sink.flush(), 2)
    await sink.close()
    assert sorted(writer.rows) == list(range(40))
    assert sum(writer.batch_sizes) == 40  # nothing written twice by the sink itself
    assert sink.safe_offsets() == {0: 19, 1: 19} and sink.stats()["healthy"]


async def test_a_refused_record_is_isolated_and_dead_lettered():
    writer = FlakyWriter()
    writer.bad = {13}
    dead = []
    async with BufferedSink(writer, batch_size=16, flush_interval=0.01,
                            on_reject=lambda rec, p, o, exc: dead.append((rec["id"], p, o))) as sink:
        for i in range(16):
            await sink.put({"id": i}, 3, 100 + i)
        await sink.flush()
    assert dead == [(13, 3, 113)]
    assert sorted(writer.rows) == [i for i in range(16) if i != 13]
    assert sink.safe_offsets() == {3: 115} and sink.stats()["rows_rejected"] == 1


async def test_a_row_that_keeps_failing_unexplained_is_dead_lettered_after_bounded_tries():
    """An error outside the policy (a bug, a value the driver chokes on) is retried ``max_attempts`` times,
    then taken for a poison row: isolated and rejected, the rest stored, the offsets move on."""
    writer = FlakyWriter()

    async def chokes_on_7(records):
        if any(r["id"] == 7 for r in records):
            raise OverflowError("date value out of range")
        await writer(records)

    dead = []
    async with BufferedSink(chokes_on_7, batch_size=8, flush_interval=0.01, backoff_initial=0.001, backoff_max=0.002,
                            max_attempts=3, on_reject=lambda rec, p, o, exc: dead.append((rec["id"], str(exc)))) as sink:
        for i in range(8):
            await sink.put({"id": i}, 0, i)
        await asyncio.wait_for(sink.flush(), 5)
        assert [i for i, _ in dead] == [7] and "write failed 3 times: OverflowError" in dead[0][1]
        assert sorted(writer.rows) == list(range(7)) and sink.safe_offsets() == {0: 7}

    # A database that is down (Retryable) is never taken for a poison row, however long it stays down.
    writer.down = True
    async with BufferedSink(writer, batch_size=2, flush_interval=0.01, backoff_initial=0.001, backoff_max=0.002,
                            max_attempts=3, on_reject=lambda *a: dead.append(a)) as sink:
        await sink.put({"id": 100}, 0, 0)
        await wait_until(lambda: sink.stats()["retries"] >= 20)
        assert len(dead) == 1 and sink.backlog == 1
        writer.down = False
        await asyncio.wait_for(sink.flush(), 5)
    assert 100 in writer.rows


async def wait_until(condition, timeout: float = 5.0) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


async def test_config_error_stops_the_sink_loudly():
    async def broken(records):
        raise ConfigError("no table")

    sink = BufferedSink(broken, batch_size=1, flush_interval=0.01)
    await sink.start()
    await sink.put({"id": 1}, 0, 0)
    with pytest.raises(ConfigError, match="no table"):
        await asyncio.wait_for(sink.flush(), 2)
    with pytest.raises(ConfigError):
        await sink.put({"id": 2}, 0, 1)
    await sink.close()


def test_offsets_complete_out_of_order():
    t = OffsetTracker()
    for o in range(6):
        t.track("p", o)
    for o in (5, 3, 4, 1):
        t.done("p", o)
    assert t.safe() == {}
    t.done("p", 0)
    assert t.safe() == {"p": 1}
    t.done("p", 2)
    assert t.safe() == {"p": 5} and t.pending() == 0


async def test_the_rate_window_stays_bounded_when_nobody_reads_the_stats():
    clock = [1000.0]
    writer = FlakyWriter()
    async with BufferedSink(writer, batch_size=1, flush_interval=0.001, clock=lambda: clock[0]) as sink:
        for i in range(200):  # one stored batch per simulated second, stats never read
            clock[0] += 1.0
            await sink.put({"id": i}, 0, i)
            await sink.flush()
        assert len(sink._recent) <= 11  # the window's memory: 10 s of batches, not 200
        assert len(writer.rows) == 200 and sink.stats()["rows_written"] == 200
