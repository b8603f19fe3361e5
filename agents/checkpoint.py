"""Write-behind state with checkpoints: outputs first, then the state that reflects them, then the offsets.

The candle agent works on live objects (:class:`streams.series.SeriesState` per series, an
:class:`learning.learner.OutcomeLearner` per partition) and never writes a table itself. It sends its
outputs straight to the producer (:meth:`Checkpoint.send`) and leaves its events unacknowledged. Every
``interval_s`` (and whenever Faust must drain: a rebalance, a stop) :meth:`Checkpoint.run`:

1. takes, between two batches, the events processed so far, the futures of their outputs and the bytes
   of every series and learner they changed, as of those events (a batch running meanwhile changes a
   series only after its bytes are kept: copy on write);
2. waits until every one of those outputs is acknowledged by the broker;
3. writes the learners' states to their table (local store and changelog) and waits for the changelog's
   acks, then the series' states likewise: a series is never restored ahead of its partition's learner,
   and a learner restored ahead of a series does not learn that series' redelivered candles again
   (:meth:`learning.learner.OutcomeLearner.has_learned`);
4. acknowledges the events, so Faust's next commit moves the offsets past them.

A batch's learning half (the drift watches and accuracy counts: nothing a later step reads) may be
:meth:`Checkpoint.defer`-red behind the next batch's outputs; step 1 runs whatever is still deferred
before it takes the learners' bytes, so every learner written has learned the events it is written with.

A crash at any point leaves a changelog (and a local store) at or after the committed offsets and never
ahead of the published outputs. Redelivered candles newer than their series are scored again (same ids);
those the series already covers are skipped (:meth:`streams.series.SeriesState.covers`). One state record
per touched series per checkpoint, instead of several per candle.

The live book is bounded: after a checkpoint, beyond ``max_live_series`` the least recently used series
whose state is written leave it (an LRU with write-back); :meth:`load` reads them back from the table when
their symbol returns. Memory then grows with the symbols of one checkpoint interval, not with every
symbol ever seen (with the RocksDB store, the table itself is on disk).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from collections.abc import Iterable
from typing import Any, Awaitable, Callable

from agents.table_cache import TableCache, as_current, read_value
from learning.learner import OutcomeLearner
from streams.series import SeriesState
from streams.series_book import SeriesBook

__all__ = ["Checkpoint", "CheckpointFailed"]

log = logging.getLogger(__name__)

ENCODE_CHUNK = 256  # series encoded per hold of the batch lock (~5 ms), so a big checkpoint does not stall batches


class CheckpointFailed(RuntimeError):
    """An output or a state write of a checkpoint was refused: the worker stops (policy in :meth:`Checkpoint.run`)."""


class Checkpoint:
    """The live state of the candle agent and the protocol that makes it durable (module docstring)."""

    def __init__(self, app: Any, series: Any, learners: Any, interval_s: float, max_pending: int = 50_000,
                 kill_at: str = "", recent_signals: Any = None, signing_key: bytes | None = None,
                 max_live_series: int = 4_000) -> None:
        self.app, self.interval_s, self.max_pending = app, interval_s, max_pending
        self.max_live_series = max_live_series  # beyond it, written series leave the live book (LRU)
        self.signing_key = signing_key  # learner values are sealed with it (learning/sealed.py)
        # Failure tests: SIGKILL inside the N-th checkpoint that writes, after its outputs, its learners or its
        # state are acked.
        stage, _, n = kill_at.partition(":")
        self._kill_at = (stage, int(n)) if kill_at else None
        self.series, self.series_table = SeriesBook(), series
        self.learners = TableCache(learners, functools.partial(OutcomeLearner.from_bytes, key=signing_key))
        self.recent_signals = recent_signals  # streams.recent_signals.RecentSignals, written behind as well
        self.stream: Any = None  # the agent's stream, to acknowledge its events
        # Held by a batch from its first read of the state to its last send, and by the snapshot of step 1.
        self.batch_lock = asyncio.Lock()
        self._running = asyncio.Lock()
        self._events: list[Any] = []
        self._outputs: list[Awaitable[Any]] = []
        self._dirty_series: dict[str, Any] = {}  # series key -> the last event that changed it
        self._writing: set[str] = set()  # the series a running checkpoint is encoding (not evictable)
        # Their bytes as of the events that checkpoint took, frozen before a later batch changes them (None
        # once handed to the writes: the key stays, so the series is not frozen again).
        self._frozen: dict[str, bytes | None] = {}
        self._dirty_learners: dict[str, Any] = {}
        self._deferred: list[Callable[[], Awaitable[None]]] = []  # learning halves not run yet, in order
        self._last_new = 0  # series the last load() brought into the book (see due)
        self.completed = 0  # checkpoints that wrote something
        # Set when a batch stopped half-way (cancelled at a stop, or failed): the live state may hold candles
        # whose outputs never went out, so this process writes no state and acknowledges nothing any more.
        self.abandoned = False

    # -- what a batch hands over --------------------------------------------------------------------
    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> None:
        """Produce one output now (to ``partition``, or by its key); the checkpoint waits for its acknowledgement."""
        self._outputs.append(await self.app.producer.send(topic, key, value, partition, None, headers))

    def processed(self, events: list[Any], series: dict[str, Any], learners: dict[str, Any]) -> None:
        """``events`` are done; ``series``/``learners`` map the keys they changed to the event that changed them last."""
        self._events.extend(events)
        self._dirty_series.update(series)
        self._dirty_learners.update(learners)

    def learner_changed(self, key: str, event: Any) -> None:
        self._dirty_learners[key] = event

    def defer(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` (a batch's learning half, which marks the learners it changed with
        :meth:`learner_changed`) at the next :meth:`settle`: after the next batch's outputs, or at the start
        of the next checkpoint, whichever comes first. Call both under ``batch_lock``."""
        self._deferred.append(work)

    async def settle(self) -> None:
        """Run the deferred work, oldest first. Learning that fails leaves a learner behind events already
        processed: like a failed batch, this process then writes and acknowledges nothing more and stops."""
        try:
            while self._deferred:
                await self._deferred.pop(0)()
        except Exception as exc:
            log.exception("deferred learning failed; stopping the worker")
            self.abandon()
            await self.app.crash(exc)
            raise CheckpointFailed(str(exc)) from exc

    @property
    def pending(self) -> int:
        return len(self._events)

    @property
    def due(self) -> bool:
        """A checkpoint should run now, not at its interval: too many events wait for one (what a crash makes
        the group redo), or new series have filled the live book past its bound plus some slack (only a
        checkpoint makes series evictable: so memory stays bounded however fast new symbols arrive). The
        next batch is taken to bring as many new series as the last one: if they and the series still
        unwritten would pass the bound, the checkpoint runs first, so the book never holds two batches of
        new symbols at once (a flood of new symbols; a steady feed of known ones never triggers it)."""
        bound = self.max_live_series + max(512, self.max_live_series // 4)
        return (self.pending >= self.max_pending or len(self.series) > bound
                or len(self._dirty_series) + self._last_new > bound)

    def load(self, keys: set[str], busy: Iterable[str] = ()) -> None:
        """Bring the series ``keys`` into the live book from the table (a fresh series if it has none).

        Room is made first: beyond ``max_live_series``, series whose state is written leave the book. Never
        one with unwritten changes: pending for the next checkpoint, being encoded by a running one, or
        ``busy`` (changed by the caller's earlier steps, not yet handed over with :meth:`processed`)."""
        self._freeze(keys)  # the caller's step is about to change them
        new = [key for key in keys if key not in self.series]
        self._last_new = len(new)
        if new and len(self.series) + len(new) > self.max_live_series:
            self.series.evict(max(self.max_live_series - len(new), 0),
                              protected={*keys, *busy, *self._dirty_series, *self._writing})
        for key in new:
            if key not in self.series:
                self.series.load(key, read_value(self.series_table, key, SeriesState.from_bytes))

    def current(self, key: str) -> SeriesState | None:
        """The newest state of series ``key`` this worker has: live if it works on it, else the table's.
        Read it under ``batch_lock``: a batch may be updating it in a thread."""
        if key in self.series:
            return self.series.state(key)
        return read_value(self.series_table, key, SeriesState.from_bytes)

    def abandon(self) -> None:
        """A batch stopped between changing the live state and handing over its outputs: drop the live
        state and everything pending. The events not yet acknowledged are redelivered from the committed
        offsets (to this worker's successor), and scored again with the same ids."""
        self.abandoned = True
        self._events, self._outputs, self._dirty_series, self._dirty_learners = [], [], {}, {}
        self.forget()

    def forget(self) -> None:
        """Partitions moved: the live objects may be stale (another worker advanced them). Deferred learning
        goes with them: its events were never acknowledged, so they are learned again where they are redelivered."""
        self.series.clear()
        self.learners.clear()
        self._deferred = []

    # -- the protocol ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """One checkpoint (steps 1-4 of the module docstring); a no-op when nothing is pending.

        Step 1 takes the events (and the learners' bytes) first and encodes their series after, a chunk
        at a time, letting batches run in between; a batch that is about to change a series not yet
        encoded freezes its bytes first (:meth:`_freeze`), so every state written is exactly as of the
        events taken, like the learners. (A state ahead of them would mix with a learner that is not: a
        redelivered candle its series covers would be skipped, and the learner would never learn what
        followed it.) The outputs are taken last, so they include those of every candle in every state.
        """
        async with self._running:
            try:
                await self._run()
            finally:
                self._writing, self._frozen = set(), {}  # written (or given up on): evictable again

    async def _run(self) -> None:
        async with self.batch_lock:
            if self.abandoned:
                return
            await self.settle()  # the learners written must have learned every event taken
            events, self._events = self._events, []
            dirty, self._dirty_series = self._dirty_series, {}
            self._writing = set(dirty)
            learner_writes = [(self.learners.table, key.encode(),
                               dict.__getitem__(self.learners, key).to_bytes(self.signing_key), event)
                              for key, event in self._dirty_learners.items() if dict.__contains__(self.learners, key)]
            self._dirty_learners = {}
            writes = self.recent_signals.take_writes() if self.recent_signals is not None else []
        writes += await self._encode(dirty)
        async with self.batch_lock:
            if self.abandoned:
                return
            outputs, self._outputs = self._outputs, []
        if not (events or outputs or learner_writes or writes):
            return
        try:
            await asyncio.gather(*outputs)
            self._maybe_killed("after-outputs")
            # The learners acknowledged before any series is sent: a series is never restored ahead of its learner.
            for phase, stage in ((learner_writes, "after-learners"), (writes, "")):
                sent = await self._write_all(phase)
                self._persisted(sent, await asyncio.gather(*(future for _, future in sent)))
                self._maybe_killed(stage)
        except Exception as exc:
            # The taken outputs are gone from this checkpoint and the live state holds their candles:
            # writing it later would cover outputs that never went out. Only a restart from the
            # committed offsets and the last complete checkpoint is consistent.
            log.exception("checkpoint %d failed; stopping the worker", self.completed + 1)
            await self.app.crash(exc)
            raise CheckpointFailed(str(exc)) from exc
        self._maybe_killed("after-state")
        for event in events:
            await self.stream.ack(event)
        self.completed += 1
        if len(self.series) > self.max_live_series:
            async with self.batch_lock:  # written series only: the ones changed since stay live
                if not self.abandoned:
                    self.series.evict(self.max_live_series, protected=self._dirty_series)

    async def _encode(self, dirty: dict[str, Any]) -> list[tuple[Any, bytes, bytes, Any]]:
        """The table writes of the ``dirty`` series, a chunk per hold of the batch lock (module docstring).
        A series a batch changed in between was frozen first (:meth:`_freeze`): each write is the series as
        of the events this checkpoint took, never newer."""
        items = list(dirty.items())
        for start in range(0, len(items), ENCODE_CHUNK):
            async with self.batch_lock:
                if self.abandoned:
                    return []
                self._freeze([key for key, _ in items[start:start + ENCODE_CHUNK]])
        writes = [(self.series_table, key.encode(), self._frozen[key], event) for key, event in items if key in self._frozen]
        # The writes hold the bytes now; the keys stay, so that no later batch freezes these series again.
        self._frozen = dict.fromkeys(self._frozen)
        return writes

    def _freeze(self, keys: Iterable[str]) -> None:
        """Keep the bytes of the series among ``keys`` that the running checkpoint has yet to write, before
        anything changes them (copy on write). Called under the batch lock, by every step: nothing to do
        while no checkpoint is writing."""
        if not self._writing:
            return
        pending = [key for key in keys if key in self._writing and key not in self._frozen and key in self.series]
        if pending:
            self._frozen.update(zip(pending, self.series.states_bytes(pending)))

    def _maybe_killed(self, stage: str) -> None:
        if self._kill_at == (stage, self.completed + 1):
            log.warning("fault injection: SIGKILL %s of checkpoint %d", stage, self.completed + 1)
            os.kill(os.getpid(), signal.SIGKILL)

    async def _write_all(self, writes: list[tuple[Any, bytes, Any, Any] | None]) -> list[tuple[Any, Any]]:
        """:meth:`_write` each of ``writes``, in order: (table, the changelog send's future) each. Each value is
        let go of as soon as the producer holds its own copy, not kept until the whole checkpoint is
        acknowledged (2,000 series' values are ~53 MB)."""
        sent = []
        for i, write in enumerate(writes):
            writes[i] = None
            sent.append((write[0], await self._write(*write)))
        return sent

    async def _write(self, table: Any, key: bytes, value: Any, event: Any) -> Awaitable[Any]:
        """Local store and changelog, on the partition of ``event`` (the series' own). Sent straight to
        the producer, not through Faust's send buffer (a task and a future per record)."""
        blob = value if isinstance(value, bytes) else \
            table.app.serializers.dumps_value(table.value_type, value, serializer=table.value_serializer)
        future = await self.app.producer.send(table.changelog_topic.get_topic_name(), key, blob,
                                              event.message.partition, None, None)
        as_current(event)  # Faust's RocksDB store writes to the current event's partition
        table.data[key] = value
        return future

    @staticmethod
    def _persisted(sent: list[tuple[Any, Any]], results: list[Any]) -> None:
        """Tell each table's store the changelog offset it now holds (what Faust's own send callback
        does), so a restart on the same local store reads the changelog only from there on."""
        newest: dict[tuple[int, Any], tuple[Any, Any, int]] = {}
        for (table, _), meta in zip(sent, results):
            if meta is not None:
                key = (id(table), meta.topic_partition)
                if key not in newest or meta.offset > newest[key][2]:
                    newest[key] = (table, meta.topic_partition, meta.offset)
        for table, tp, offset in newest.values():
            table.data.set_persisted_offset(tp, offset)
