"""SequenceBook: the recurrent states of the step models (the Mamba member) per series, and their lags.

A step model keeps one state per series and model version; the batch step reads it before a candle and
stores the one after (:mod:`streams.scoring`). When the distilled student serves a candle instead
(:mod:`streams.serving_chain`), the full model's states do not step through it: they *lag* by that candle,
and are caught up from the series' window the next time the full model scores the series, so they equal
the states of a run without the student. A lagging state is never stored (:meth:`SequenceBook.stored`):
a restart starts that version from the window, as for any version new to a series.

A :class:`~streams.series_book.SeriesBook` holds one (its ``sequences``) and gives it the function
that reads a series' window from its feature banks.

Each version's states are the rows of one matrix (:class:`StateRows`), read and written a batch at a time.
Keeping each series' state as a row of the array its step returned instead (as before) made every such
array live as long as any one of its rows: a series that went quiet after a close of 2,000 symbols held
that close's whole 20 MB of states until it left the live book.

>>> class Sum:  # a step model whose state is the sum of the feature rows it stepped through
...     version, state_size = "sum-1", 2
...     def initial_state(self, n): return np.zeros((n, 2), dtype=np.float32)
...     def step(self, rows, state): return None, state + rows
...     def scan(self, rows, state): return None, state + rows.sum(axis=1)   # T candles at once
>>> window = np.ones((3, 2), dtype=np.float32)  # the series' last three feature vectors
>>> book = SequenceBook(lambda key: window)
>>> book.states_of(["A|5m"], Sum(), behind=[1]).tolist()  # new to the version: the window but its newest row
[[2.0, 2.0]]
>>> book.set_states(["A|5m"], "sum-1", np.array([[2.0, 2.0]], dtype=np.float32))
>>> book.skip(["A|5m"], ["sum-1"])  # a student served the newest candle: the state lags by it
>>> book.lags, book.stored("A|5m")
({'A|5m': {'sum-1': 1}}, {})
>>> book.states_of(["A|5m"], Sum(), behind=[0]).tolist()  # caught up through the row it missed
[[3.0, 3.0]]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["SequenceBook", "StateRows"]


class StateRows:
    """One model version's state per series: rows of a matrix that grows by doubling, a free list for the
    rows of series that left.

    >>> rows = StateRows(2)
    >>> rows.put(["A", "B"], np.array([[1, 1], [2, 2]], dtype=np.float32))
    >>> rows.drop("A"); rows.put(["C"], np.array([[3, 3]], dtype=np.float32))  # C takes A's row
    >>> rows.get("C").tolist(), rows.get("A"), len(rows), rows.capacity
    ([3.0, 3.0], None, 2, 2)
    """

    def __init__(self, size: int, capacity: int = 2) -> None:
        self.size = size
        self.matrix = np.zeros((capacity, size), dtype=np.float32)
        self.slot: dict[str, int] = {}
        self._free = list(range(capacity - 1, -1, -1))  # popped lowest first

    def __len__(self) -> int:
        return len(self.slot)

    @property
    def capacity(self) -> int:
        return len(self.matrix)

    def get(self, key: str) -> np.ndarray | None:
        """The state of ``key`` (a view of its row: valid until the next :meth:`put`), or None."""
        j = self.slot.get(key)
        return None if j is None else self.matrix[j]

    def put(self, keys: Sequence[str], states: np.ndarray) -> None:
        """Store ``states[i]`` as the state of ``keys[i]`` (the last one wins where a key repeats)."""
        slots = [self._slot_of(key) for key in keys]
        if len(set(slots)) == len(slots):
            self.matrix[slots] = states
        else:
            for j, state in zip(slots, states):
                self.matrix[j] = state

    def drop(self, key: str) -> None:
        j = self.slot.pop(key, None)
        if j is not None:
            self._free.append(j)

    def _slot_of(self, key: str) -> int:
        j = self.slot.get(key)
        if j is None:
            if not self._free:
                self._grow()
            j = self.slot[key] = self._free.pop()
        return j

    def _grow(self) -> None:
        old = self.matrix
        self.matrix = np.zeros((2 * len(old), self.size), dtype=np.float32)
        self.matrix[:len(old)] = old
        self._free.extend(range(2 * len(old) - 1, len(old) - 1, -1))  # popped lowest first


class SequenceBook:
    """The recurrent state of each step-model version per series key, with how far each lags behind."""

    def __init__(self, window: Callable[[str], np.ndarray]) -> None:
        self._window = window  # key -> the series' recent feature vectors, oldest first
        self.versions: dict[str, StateRows] = {}  # model version -> its state of each series
        # key -> model version -> how many of the series' newest candles that state has not stepped through
        # (the distilled student served them: streams/serving_chain.py); caught up at the next step.
        self.lags: dict[str, dict[str, int]] = {}
        # Seconds spent stepping states through windows (series new to a version, states catching up): not
        # the steady cost of a candle, so the latency budget's estimate leaves them out (streams/serving_chain.py).
        self.warm_up_seconds = 0.0

    def state(self, key: str, version: str) -> np.ndarray | None:
        """The state ``version`` holds for ``key`` (a view: valid until the next step), or None."""
        rows = self.versions.get(version)
        return rows.get(key) if rows is not None else None

    # -- stored form in and out ----------------------------------------------------------------------
    def load(self, key: str, states: dict[str, np.ndarray] | None) -> None:
        """Take the stored ``states`` of ``key`` in, instead of those held (none: those held are kept); a
        stored state never lags. A state of another size than its version's others is left out (the
        version starts that series from its window)."""
        if states:
            for version in [v for v in self.versions if v not in states]:
                self._drop(version, key)
            for version, state in states.items():
                state = np.asarray(state, dtype=np.float32).ravel()
                rows = self.versions.get(version)
                if rows is None:
                    rows = self.versions[version] = StateRows(state.size)
                if state.size == rows.size:
                    rows.put([key], state[None])
                else:
                    self._drop(version, key)
        self.lags.pop(key, None)

    def stored(self, key: str) -> dict[str, np.ndarray]:
        """The states of ``key`` as stored (views of the rows: encode or copy them before the next step): a
        state that lags (its series' newest candles were served by a student and not stepped yet) is left
        out, so a restart starts that version from the series' window, as for any version new to a series;
        the live book catches it up exactly instead."""
        lags = self.lags.get(key) if self.lags else None
        states = {}
        for version, rows in self.versions.items():
            state = rows.get(key)
            if state is not None and not (lags and lags.get(version)):
                states[version] = state
        return states

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the states of ``keys`` (series leaving the live book)."""
        for key in keys:
            for version in list(self.versions):
                self._drop(version, key)
            self.lags.pop(key, None)

    def _drop(self, version: str, key: str) -> None:
        rows = self.versions.get(version)
        if rows is not None and key in rows.slot:
            rows.drop(key)
            if not rows.slot:  # no series holds this version any more: its matrix goes
                del self.versions[version]

    # -- the step ------------------------------------------------------------------------------------
    def states_of(self, keys: Sequence[str], model: Any, behind: Sequence[int]) -> np.ndarray:
        """The recurrent state of ``model`` (a step-mode sequence model: ``version``, ``state_size``,
        ``initial_state``, ``scan``) for each series in ``keys``, whose newest ``behind[j]`` candles are
        folded in but not yet stepped.

        A series that has none for this version (new to it: a fresh series, a hot-reloaded version, a
        state from before) starts from the zero state stepped through its window without those rows:
        what the window forward would have seen, so a new version needs no warm-up. A state that lags
        (:meth:`skip`: candles a student served) is first stepped through the rows it missed, from the
        window, so it is the state a run without the student would hold; one that lags further back
        than the window reaches starts from the window like a new one."""
        out = np.empty((len(keys), model.state_size), dtype=np.float32)
        cold: dict[int, list[int]] = {}  # prior window length -> rows
        behind_by: dict[int, list[int]] = {}  # candles to catch up -> rows
        lags = self.lags
        window = self._window
        mine = self.versions.get(model.version)
        slot = mine.slot if mine is not None and mine.size == model.state_size else {}
        held: list[int] = []  # rows of ``out`` whose state the book holds, and where
        where: list[int] = []
        for j, key in enumerate(keys):
            at = slot.get(key)
            lag = lags[key].get(model.version, 0) if lags and key in lags else 0
            if at is not None:
                held.append(j)
                where.append(at)
                if not lag:
                    continue
                if len(window(key)) >= behind[j] + lag:
                    behind_by.setdefault(lag, []).append(j)
                    continue
            cold.setdefault(max(len(window(key)) - behind[j], 0), []).append(j)
        if len(held) == len(keys):  # every series has its state (the steady case): one copy, no temporary
            np.take(mine.matrix, where, axis=0, out=out, mode="clip")  # ("raise" would buffer a copy)
        elif held:
            out[held] = mine.matrix[where]  # (cold rows among them are overwritten below)
        if not cold and not behind_by:
            return out
        started = time.perf_counter()
        for length, rows in cold.items():
            state = model.initial_state(len(rows))
            if length:
                _, state = model.scan(np.stack([window(keys[j])[:length] for j in rows]), state)
            out[rows] = state
        for lag, rows in behind_by.items():
            missed = np.stack([self._missed(keys[j], behind[j], lag) for j in rows])
            _, out[rows] = model.scan(missed, out[rows])
        self.warm_up_seconds += time.perf_counter() - started
        return out

    def _missed(self, key: str, behind: int, lag: int) -> np.ndarray:
        """The ``lag`` feature vectors of ``key`` before its newest ``behind`` ones, oldest first."""
        window = self._window(key)
        return window[len(window) - behind - lag:len(window) - behind]

    def skip(self, keys: Iterable[str], versions: Sequence[str]) -> None:
        """The newest candle of each series in ``keys`` (one entry per candle) was not stepped by the
        step models ``versions`` (a student served it): their states there lag by one more candle."""
        held = [(version, self.versions[version].slot) for version in versions if version in self.versions]
        for key in keys:
            mine = [version for version, slot in held if key in slot]
            if not mine:
                continue  # no state: it starts from the window anyway
            lag = self.lags.setdefault(key, {})
            for version in mine:
                lag[version] = lag.get(version, 0) + 1

    def set_states(self, keys: Sequence[str], version: str, states: np.ndarray, keep: Iterable[str] = ()) -> None:
        """Store ``states`` as the state of ``version`` for each series in ``keys``; versions not in ``keep``
        (and not ``version``) are dropped from those series: a model no longer served has no state to keep."""
        keep = {version, *keep}
        states = np.asarray(states, dtype=np.float32)
        rows = self.versions.get(version)
        if rows is None or rows.size != states.shape[1]:  # (another size: the version's older states go)
            rows = self.versions[version] = StateRows(states.shape[1])
        rows.put(keys, states)
        for old in [v for v in self.versions if v not in keep]:  # models no longer served
            for key in keys:
                self._drop(old, key)
        lags = self.lags
        if lags:
            for key in keys:
                lag = lags.get(key)
                if lag is None:
                    continue
                for v in [v for v in lag if v == version or v not in keep]:
                    del lag[v]
                if not lag:
                    del lags[key]
