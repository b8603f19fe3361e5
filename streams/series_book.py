"""SeriesBook: the live series of one worker, with their features in the vectorised engine.

A worker's series are held here between checkpoints: the rolling features of every series in one
:class:`~features.bank.FeatureBank` per timeframe (a batch's candles are folded in with numpy
operations over all its symbols at once, bit-identical to :class:`~features.FeatureState`),
and per series its labeller, the input position it reflects and the recurrent states of the step models
(:class:`~streams.sequence_book.SequenceBook`). :class:`~streams.series.SeriesState`
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

from collections.abc import Iterable, Iterator, Sequence
from functools import partial

import numpy as np

from learning.labelling import Labeller
from core.candle import Candle
from core.errors import InvalidInput, OutOfOrder
from features import FeatureState
from features.bank import FeatureBank
from features.names import N_FEATURES, READY_AFTER
from features.window import WINDOW
from core.series_keys import series_key, split_series_key as _split
from streams.fold_plan import alone_above
from streams.sequence_book import SequenceBook
from streams.series import Position, SeriesState, covers, encode_series

__all__ = ["SeriesBook"]


def _window(banks: dict[str, FeatureBank], key: str, k: int = WINDOW) -> np.ndarray:
    """:meth:`SeriesBook.window` of the book whose banks are ``banks``."""
    symbol, timeframe = _split(key)
    bank = banks.get(timeframe)
    if bank is None or symbol not in bank:
        return np.empty((0, N_FEATURES), dtype=np.float32)
    return bank.window(symbol, k)


class SeriesBook:
    """Features (a FeatureBank per timeframe), labeller, position and step-model states (a
    :class:`~streams.sequence_book.SequenceBook`: ``sequences``) of each series key ``symbol|tf``."""

    def __init__(self) -> None:
        self._banks: dict[str, FeatureBank] = {}
        self._keys: dict[str, None] = {}  # in order of last use, oldest first (what evict() takes)
        self.labellers: dict[str, Labeller] = {}
        self.positions: dict[str, Position] = {}
        # The step models' recurrent states, read from the windows (the banks, not self: no reference cycle).
        self.sequences = SequenceBook(partial(_window, self._banks))

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
        self.sequences.load(key, state.sequences)

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
                                     self.sequences.stored(key)).to_bytes()
        for timeframe, members in by_timeframe.items():
            features = self._banks[timeframe].states_bytes([_split(keys[j])[0] for j in members])
            for j, blob in zip(members, features):
                out[j] = encode_series(blob, self.labellers.get(keys[j]), self.positions.get(keys[j]),
                                       self.sequences.stored(keys[j]))
        return out

    def _state(self, key: str, copy: bool) -> SeriesState | None:
        if key not in self._keys:
            return None
        symbol, timeframe = _split(key)
        bank = self._banks.get(timeframe)
        features = bank.state(symbol, copy=copy) if bank is not None and symbol in bank else None
        sequences = self.sequences.stored(key)
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
            symbol, timeframe = _split(key)
            by_timeframe.setdefault(timeframe, []).append(symbol)
        self.sequences.forget(gone)
        for timeframe, symbols in by_timeframe.items():
            if timeframe in self._banks:
                self._banks[timeframe].remove(symbols)
        return gone

    # -- reads ------------------------------------------------------------------------------------------
    def last_open_time(self, key: str) -> int | None:
        symbol, timeframe = _split(key)
        bank = self._banks.get(timeframe)
        return bank.last_open_time(symbol) if bank is not None and symbol in bank else None

    def window(self, key: str, k: int = WINDOW) -> np.ndarray:
        """The last ``k`` feature vectors of the series, oldest first (float32; empty if none)."""
        return _window(self._banks, key, k)

    def covers(self, key: str, position: Position | None, open_time: int) -> bool:
        """True if the candle at ``position`` is already folded in (see :meth:`SeriesState.covers`)."""
        return covers(self.positions.get(key), self.last_open_time(key), position, open_time)

    # -- the update --------------------------------------------------------------------------------------
    def fold(self, candles: Sequence[Candle], windows: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, InvalidInput]]]:
        """Fold ``candles`` in, in order per series: (feature rows, ready flags, rejected (index, error)).

        Each round takes the next candle of every series of a timeframe, so one series' candles stay
        in arrival order and each round is one vectorised step over all its symbols; the series deep
        enough in the batch to be cheaper alone are folded on their own instead
        (:func:`streams.fold_plan.alone_above`). Rows of rejected candles are NaN. ``windows``, an (n,
        WINDOW, features) float32 array, receives each candle's window as of that candle, NaN rows in
        front while shorter (what a sequence model reads).
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
        depths: dict[str, list[int]] = {}  # timeframe -> candles of each of its series in the batch
        for key, members in by_series.items():
            depths.setdefault(candles[members[0]].timeframe, []).append(len(members))
        alone = {timeframe: alone_above(d) for timeframe, d in depths.items()}
        for key, members in by_series.items():
            if len(members) > alone[candles[members[0]].timeframe]:
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
