"""SeriesBook: the live series of one worker, with their features in the vectorised engine.

A worker's series are held here between checkpoints: the rolling features of every series in one
:class:`~features.bank.FeatureBank` per timeframe (a batch's candles are folded in with numpy
operations over all its symbols at once, bit-identical to :class:`~features.FeatureState`),
and per series its labeller and the input position it reflects. :class:`~streams.series.SeriesState`
is the stored form: :meth:`SeriesBook.load` takes one in, :meth:`SeriesBook.state` gives one out
(what a checkpoint writes and a web view shows).

>>> from core.candle import Candle
>>> book = SeriesBook()
>>> candles = [Candle(s, "5m", 300_000 * i, 1.0, 1.1, 0.9, 1.0 + i / 100, 2.0) for i in range(3) for s in ("A", "B")]
>>> rows, ready, rejected = book.fold(candles + [candles[0]])
>>> rows.shape, bool(ready.any()), [(j, e.kind) for j, e in rejected]
((7, 41), False, [(6, 'out_of_order')])
>>> book.last_open_time("A|5m"), book.state("A|5m").features.count, sorted(book)
(600000, 3, ['A|5m', 'B|5m'])
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from learning.labelling import Labeller
from core.candle import Candle
from core.errors import InvalidInput, OutOfOrder
from features import FeatureState
from features.bank import FeatureBank
from features.names import N_FEATURES, READY_AFTER
from core.series_keys import series_key, split_series_key as _split
from streams.series import Position, SeriesState, covers, encode_series

__all__ = ["SeriesBook"]

# A series with more candles than this in one batch is folded on its own (scalar), not in rounds...
DEEP = 4
# ...unless at least this many series are that deep (a replay's take of many closes of many symbols):
# then the rounds are wide enough for the vectorised step to win.
WIDE = 32


class SeriesBook:
    """Features (a FeatureBank per timeframe), labeller and position of each series key ``symbol|tf``."""

    def __init__(self) -> None:
        self._banks: dict[str, FeatureBank] = {}
        self._keys: dict[str, None] = {}  # in order of last use, oldest first (what evict() takes)
        self.labellers: dict[str, Labeller] = {}
        self.positions: dict[str, Position] = {}
        self.sequences: dict[str, dict[str, np.ndarray]] = {}  # key -> model version -> recurrent state
        # key -> model version -> how many of the series' newest candles that state has not stepped through
        # (the distilled student served them: streams/serving_chain.py); caught up at the next step.
        self.lags: dict[str, dict[str, int]] = {}
        # Seconds spent stepping states through windows (series new to a version, states catching up): not
        # the steady cost of a candle, so the latency budget's estimate leaves them out (streams/serving_chain.py).
        self.warm_up_seconds = 0.0

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def _bank(self, timeframe: str) -> FeatureBank:
        bank = self._banks.get(timeframe)
        if bank is None:
            bank = self._banks[timeframe] = FeatureBank(timeframe)
        return bank

    # -- stored form in and out ----------------------------------------------------------------------
    def load(self, key: str, state: SeriesState | None) -> None:
        """Make ``state`` (None: a fresh series) the live state of ``key``."""
        symbol, timeframe = _split(key)
        self._touch(key)
        if state is None:
            return
        self._bank(timeframe).set_state(symbol, state.features)
        if state.labeller is not None:
            self.labellers[key] = state.labeller
        if state.position is not None:
            self.positions[key] = state.position
        if state.sequences:
            self.sequences[key] = dict(state.sequences)
        self.lags.pop(key, None)  # a stored state never lags (see _stored_sequences)

    def state(self, key: str) -> SeriesState | None:
        """A copy of the series in its stored form (None for a key the book does not hold)."""
        return self._state(key, copy=True)

    def states_bytes(self, keys: Sequence[str]) -> list[bytes]:
        """``[state(key).to_bytes() for key in keys]`` (the same bytes), the features written straight
        from the banks' matrices: what a checkpoint writes."""
        out: list[bytes] = [b""] * len(keys)
        by_timeframe: dict[str, list[int]] = {}
        for j, key in enumerate(keys):
            assert key in self._keys, key
            symbol, timeframe = _split(key)
            bank = self._banks.get(timeframe)
            if bank is not None and symbol in bank:
                by_timeframe.setdefault(timeframe, []).append(j)
            else:  # known, never folded a candle: an empty state
                out[j] = SeriesState(None, self.labellers.get(key), self.positions.get(key),
                                     self._stored_sequences(key)).to_bytes()
        for timeframe, members in by_timeframe.items():
            features = self._banks[timeframe].states_bytes([_split(keys[j])[0] for j in members])
            for j, blob in zip(members, features):
                out[j] = encode_series(blob, self.labellers.get(keys[j]), self.positions.get(keys[j]),
                                       self._stored_sequences(keys[j]))
        return out

    def _stored_sequences(self, key: str) -> dict[str, np.ndarray] | None:
        """The recurrent states of ``key`` as stored: a state that lags (its series' newest candles were
        served by a student and not stepped yet) is left out, so a restart starts that version from the
        series' window, as for any version new to a series; the live book catches it up exactly instead."""
        sequences = self.sequences.get(key)
        lags = self.lags.get(key) if self.lags else None
        if not sequences or not lags:
            return sequences
        return {v: s for v, s in sequences.items() if not lags.get(v)}

    def _state(self, key: str, copy: bool) -> SeriesState | None:
        if key not in self._keys:
            return None
        symbol, timeframe = _split(key)
        bank = self._banks.get(timeframe)
        features = bank.state(symbol, copy=copy) if bank is not None and symbol in bank else None
        sequences = self._stored_sequences(key)
        return SeriesState(features, self.labellers.get(key), self.positions.get(key),
                           {v: a.copy() for v, a in sequences.items()} if sequences and copy else sequences)

    def clear(self) -> None:
        self.__init__()

    def _touch(self, key: str) -> None:
        self._keys.pop(key, None)
        self._keys[key] = None

    def evict(self, keep: int, protected: Iterable[str] = ()) -> list[str]:
        """Forget the least recently used series beyond the newest ``keep``, except ``protected`` ones
        (series whose changes are not yet written); returns the keys forgotten. Only call it for series
        whose stored form is in the table: :meth:`load` brings them back when they are used again."""
        excess = len(self._keys) - keep
        if excess <= 0:
            return []
        protected = set(protected)
        gone = []
        for key in self._keys:
            if len(gone) == excess:
                break
            if key not in protected:
                gone.append(key)
        by_timeframe: dict[str, list[str]] = {}
        for key in gone:
            del self._keys[key]
            self.labellers.pop(key, None)
            self.positions.pop(key, None)
            self.sequences.pop(key, None)
            self.lags.pop(key, None)
            symbol, timeframe = _split(key)
            by_timeframe.setdefault(timeframe, []).append(symbol)
        for timeframe, symbols in by_timeframe.items():
            if timeframe in self._banks:
                self._banks[timeframe].remove(symbols)
        return gone

    # -- reads ------------------------------------------------------------------------------------------
    def last_open_time(self, key: str) -> int | None:
        symbol, timeframe = _split(key)
        bank = self._banks.get(timeframe)
        return bank.last_open_time(symbol) if bank is not None and symbol in bank else None

    def window(self, key: str, k: int = 60) -> np.ndarray:
        """The last ``k`` feature vectors of the series, oldest first (float32; empty if none)."""
        symbol, timeframe = _split(key)
        bank = self._banks.get(timeframe)
        if bank is None or symbol not in bank:
            return np.empty((0, N_FEATURES), dtype=np.float32)
        return bank.window(symbol, k)

    def sequence_states(self, keys: Sequence[str], model: Any, behind: Sequence[int]) -> np.ndarray:
        """The recurrent state of ``model`` (a step-mode sequence model: ``version``, ``state_size``,
        ``step``) for each series in ``keys``, whose newest ``behind[j]`` candles are folded in but not
        yet stepped.

        A series that has none for this version (new to it: a fresh series, a hot-reloaded version, a
        state from before) starts from the zero state stepped through its window without those rows:
        what the window forward would have seen, so a new version needs no warm-up. A state that lags
        (:meth:`skip_sequences`: candles a student served) is first stepped through the rows it missed,
        from the window, so it is the state a run without the student would hold; one that lags further
        back than the window reaches starts from the window like a new one."""
        out = np.empty((len(keys), model.state_size), dtype=np.float32)
        cold: dict[int, list[int]] = {}  # prior window length -> rows
        behind_by: dict[int, list[int]] = {}  # candles to catch up -> rows
        lags = self.lags
        for j, key in enumerate(keys):
            state = self.sequences.get(key, {}).get(model.version)
            lag = lags[key].get(model.version, 0) if lags and key in lags else 0
            if state is not None and state.size == model.state_size:
                out[j] = state
                if not lag:
                    continue
                if len(self.window(key)) >= behind[j] + lag:
                    behind_by.setdefault(lag, []).append(j)
                    continue
            cold.setdefault(max(len(self.window(key)) - behind[j], 0), []).append(j)
        if not cold and not behind_by:
            return out
        started = time.perf_counter()
        for length, rows in cold.items():
            state = model.initial_state(len(rows))
            if length:
                windows = np.stack([self.window(keys[j])[:length] for j in rows])
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
        window = self.window(key)
        return window[len(window) - behind - lag:len(window) - behind]

    def skip_sequences(self, keys: Iterable[str], versions: Sequence[str]) -> None:
        """The newest candle of each series in ``keys`` (one entry per candle) was not stepped by the
        step models ``versions`` (a student served it): their states there lag by one more candle."""
        for key in keys:
            mine = self.sequences.get(key)
            if not mine:
                continue  # no state: it starts from the window anyway
            lag = self.lags.setdefault(key, {})
            for version in versions:
                if version in mine:
                    lag[version] = lag.get(version, 0) + 1

    def set_sequence_states(self, keys: Sequence[str], version: str, states: np.ndarray,
                            keep: Iterable[str] = ()) -> None:
        """Store ``states`` as the state of ``version`` for each series in ``keys``; versions not in ``keep``
        (and not ``version``) are dropped from those series: a model no longer served has no state to keep."""
        keep = {version, *keep}
        lags = self.lags
        for key, state in zip(keys, states):
            mine = self.sequences.setdefault(key, {})
            for old in [v for v in mine if v not in keep]:
                del mine[old]
            mine[version] = state
            if lags and key in lags:
                lag = lags[key]
                for v in [v for v in lag if v == version or v not in keep]:
                    del lag[v]
                if not lag:
                    del lags[key]

    def covers(self, key: str, position: Position | None, open_time: int) -> bool:
        """True if the candle at ``position`` is already folded in (see :meth:`SeriesState.covers`)."""
        return covers(self.positions.get(key), self.last_open_time(key), position, open_time)

    # -- the update --------------------------------------------------------------------------------------
    def fold(self, candles: Sequence[Candle], windows: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, InvalidInput]]]:
        """Fold ``candles`` in, in order per series: (feature rows, ready flags, rejected (index, error)).

        Each round takes the next candle of every series of a timeframe, so one series' candles stay
        in arrival order and each round is one vectorised step over all its symbols; a series with more
        than ``DEEP`` candles in the batch is folded on its own instead, unless ``WIDE`` series or more are. Rows of rejected
        candles are NaN. ``windows``, an (n, WINDOW, features) float32 array, receives each candle's
        window as of that candle, NaN rows in front while shorter (what a sequence model reads).
        """
        rows = np.full((len(candles), N_FEATURES), np.nan)
        ready = np.zeros(len(candles), dtype=bool)
        rejected: list[tuple[int, InvalidInput]] = []
        by_series: dict[str, list[int]] = {}
        for i, c in enumerate(candles):
            by_series.setdefault(series_key(c.symbol, c.timeframe), []).append(i)
        for key in by_series:
            self._touch(key)
        rounds: dict[tuple[str, int], list[int]] = {}
        few_deep = sum(len(members) > DEEP for members in by_series.values()) < WIDE
        for key, members in by_series.items():
            if few_deep and len(members) > DEEP:  # many candles of a few series (a backfill, a few symbols at full speed)
                self._fold_one(key, members, candles, rows, ready, rejected, windows)
                continue
            for n, i in enumerate(members):
                rounds.setdefault((candles[i].timeframe, n), []).append(i)
        for (timeframe, _), members in sorted(rounds.items(), key=lambda item: item[0][1]):
            bank = self._bank(timeframe)
            good = []
            for i in members:
                c = candles[i]
                last = bank.last_open_time(c.symbol) if c.symbol in bank else None
                if last is not None and c.open_time <= last:
                    rejected.append((i, OutOfOrder(f"candle open_time {c.open_time} is not after the last one ({last})")))
                else:
                    good.append(i)
            if not good:
                continue
            rows[good] = bank.update_many([candles[i] for i in good])
            ready[good] = [bank.count(candles[i].symbol) >= READY_AFTER for i in good]
            if windows is not None:
                for i in good:
                    recent = bank.window(candles[i].symbol, windows.shape[1])
                    windows[i, windows.shape[1] - len(recent):] = recent
        rejected.sort(key=lambda r: r[0])
        return rows, ready, rejected

    def _fold_one(self, key: str, members: list[int], candles: Sequence[Candle], rows: np.ndarray, ready: np.ndarray,
                  rejected: list[tuple[int, InvalidInput]], windows: np.ndarray | None) -> None:
        """One series' candles through its FeatureState, taken out of the bank and put back once:
        a vectorised round over a single symbol costs more than the scalar update it replaces."""
        symbol, timeframe = _split(key)
        bank = self._bank(timeframe)
        state = bank.state(symbol) if symbol in bank else FeatureState()
        for i in members:
            try:
                rows[i] = state.update(candles[i])
            except InvalidInput as exc:
                rejected.append((i, exc))
                continue
            ready[i] = state.ready
            if windows is not None:
                recent = state.window(windows.shape[1])
                windows[i, windows.shape[1] - len(recent):] = recent
        bank.set_state(symbol, state)
