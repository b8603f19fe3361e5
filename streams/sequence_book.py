"""SequenceBook: the recurrent states of the step models (the Mamba member) per series, and their lags.

A step model keeps one state per series and model version; the batch step reads it before a candle and
stores the one after (:mod:`streams.scoring`). When the distilled student serves a candle instead
(:mod:`streams.serving_chain`), the full model's states do not step through it: they *lag* by that candle,
and are caught up from the series' window the next time the full model scores the series, so they equal
the states of a run without the student. A lagging state is never stored (:meth:`SequenceBook.stored`):
a restart starts that version from the window, as for any version new to a series.

A :class:`~streams.series_book.SeriesBook` holds one (its ``sequences``) and gives it the function
that reads a series' window from its feature banks.

>>> class Sum:  # a step model whose state is the sum of the feature rows it stepped through
...     version, state_size = "sum-1", 2
...     def initial_state(self, n): return np.zeros((n, 2), dtype=np.float32)
...     def step(self, rows, state): return None, state + rows
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

__all__ = ["SequenceBook"]


class SequenceBook:
    """The recurrent state of each step-model version per series key, with how far each lags behind."""

    def __init__(self, window: Callable[[str], np.ndarray]) -> None:
        self._window = window  # key -> the series' recent feature vectors, oldest first
        self.states: dict[str, dict[str, np.ndarray]] = {}  # key -> model version -> recurrent state
        # key -> model version -> how many of the series' newest candles that state has not stepped through
        # (the distilled student served them: streams/serving_chain.py); caught up at the next step.
        self.lags: dict[str, dict[str, int]] = {}
        # Seconds spent stepping states through windows (series new to a version, states catching up): not
        # the steady cost of a candle, so the latency budget's estimate leaves them out (streams/serving_chain.py).
        self.warm_up_seconds = 0.0

    # -- stored form in and out ----------------------------------------------------------------------
    def load(self, key: str, states: dict[str, np.ndarray] | None) -> None:
        """Take the stored ``states`` of ``key`` in (none: those held are kept); a stored state never lags."""
        if states:
            self.states[key] = dict(states)
        self.lags.pop(key, None)

    def stored(self, key: str) -> dict[str, np.ndarray] | None:
        """The states of ``key`` as stored: a state that lags (its series' newest candles were served by a
        student and not stepped yet) is left out, so a restart starts that version from the series'
        window, as for any version new to a series; the live book catches it up exactly instead."""
        states = self.states.get(key)
        lags = self.lags.get(key) if self.lags else None
        if not states or not lags:
            return states
        return {v: s for v, s in states.items() if not lags.get(v)}

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the states of ``keys`` (series leaving the live book)."""
        for key in keys:
            self.states.pop(key, None)
            self.lags.pop(key, None)

    # -- the step ------------------------------------------------------------------------------------
    def states_of(self, keys: Sequence[str], model: Any, behind: Sequence[int]) -> np.ndarray:
        """The recurrent state of ``model`` (a step-mode sequence model: ``version``, ``state_size``,
        ``step``) for each series in ``keys``, whose newest ``behind[j]`` candles are folded in but not
        yet stepped.

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
        for j, key in enumerate(keys):
            state = self.states.get(key, {}).get(model.version)
            lag = lags[key].get(model.version, 0) if lags and key in lags else 0
            if state is not None and state.size == model.state_size:
                out[j] = state
                if not lag:
                    continue
                if len(window(key)) >= behind[j] + lag:
                    behind_by.setdefault(lag, []).append(j)
                    continue
            cold.setdefault(max(len(window(key)) - behind[j], 0), []).append(j)
        if not cold and not behind_by:
            return out
        started = time.perf_counter()
        for length, rows in cold.items():
            state = model.initial_state(len(rows))
            if length:
                windows = np.stack([window(keys[j])[:length] for j in rows])
                for t in range(length):
                    _, state = model.step(windows[:, t], state)
            out[rows] = state
        for lag, rows in behind_by.items():
            missed = np.stack([self._missed(keys[j], behind[j], lag) for j in rows])
            state = out[rows]
            for t in range(lag):
                _, state = model.step(missed[:, t], state)
            out[rows] = state
        self.warm_up_seconds += time.perf_counter() - started
        return out

    def _missed(self, key: str, behind: int, lag: int) -> np.ndarray:
        """The ``lag`` feature vectors of ``key`` before its newest ``behind`` ones, oldest first."""
        window = self._window(key)
        return window[len(window) - behind - lag:len(window) - behind]

    def skip(self, keys: Iterable[str], versions: Sequence[str]) -> None:
        """The newest candle of each series in ``keys`` (one entry per candle) was not stepped by the
        step models ``versions`` (a student served it): their states there lag by one more candle."""
        for key in keys:
            mine = self.states.get(key)
            if not mine:
                continue  # no state: it starts from the window anyway
            lag = self.lags.setdefault(key, {})
            for version in versions:
                if version in mine:
                    lag[version] = lag.get(version, 0) + 1

    def set_states(self, keys: Sequence[str], version: str, states: np.ndarray, keep: Iterable[str] = ()) -> None:
        """Store ``states`` as the state of ``version`` for each series in ``keys``; versions not in ``keep``
        (and not ``version``) are dropped from those series: a model no longer served has no state to keep."""
        keep = {version, *keep}
        lags = self.lags
        for key, state in zip(keys, states):
            mine = self.states.setdefault(key, {})
            for old in [v for v in mine if v not in keep]:
                del mine[old]
            mine[version] = state
            if lags and key in lags:
                lag = lags[key]
                for v in [v for v in lag if v == version or v not in keep]:
                    del lag[v]
                if not lag:
                    del lags[key]
