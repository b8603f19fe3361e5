"""The Mamba model's dataset: windows of the stream's features, labels per horizon, the split and the
normalisation statistics (training: :mod:`training.mamba`).

- **Windows** come from :class:`features.FeatureState` fed one candle at a time, as the candle
  agent feeds it: the window of the row at time ``t`` is ``state.window(60)`` right after candle ``t``
  (gap fill-ins included, padded by the serving rule while the state is young). Rows are kept once the
  state is ``ready`` and every horizon's future candle exists.
- **Labels**: for each horizon ``h`` in 1..5, ``1`` if ``close[t + h] > close[t]`` (found by time, so a gap
  is never bridged), else 0: a flat future counts as "not up".
- **Split**, per series and in time order: train | valid (early stopping) | test (reported metrics),
  each boundary purged so no row's label candle (``t + 5``) lies in the next part.
- **Normalisation** statistics from the training rows only; NaN -> 0 after normalisation (in the model).

>>> from core.candle_files import read_candle_file
>>> from training.dataset import BUNDLED
>>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:300]
>>> w = build_windows([eth])
>>> w.x.shape[1:], w.y.shape[1], len(w) == 300 - 33 - 5      # ready after 34 candles, 5 needed ahead
((60, 41), 5, True)
>>> train, valid, test = split_windows(w)
>>> int(train.open_time.max()) + 5 * 300_000 < int(valid.open_time.min())   # purged
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
from tqdm.auto import tqdm

from core.candle import TIMEFRAME_MS, Candle
from core.errors import ConfigError
from features import FEATURE_NAMES, FeatureState
from models.mamba.windows import WINDOW, pad_windows

__all__ = ["HORIZONS", "Windows", "build_windows", "normalisation_stats", "split_windows", "windows_at"]

HORIZONS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Windows:
    """Rows of the sequence dataset: ``x`` (n, 60, n_features) float32 raw features, ``y`` (n, n_horizons)."""

    x: np.ndarray
    y: np.ndarray
    open_time: np.ndarray     # int64 epoch ms of the row's last candle
    symbol: np.ndarray        # str
    timeframe: np.ndarray     # str
    last_return: np.ndarray   # log(close[t] / close[t-1]), for the last-return baseline

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> Windows:
        return Windows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, parts: Sequence[Windows]) -> Windows:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def _stream_windows(candles: Sequence[Candle], wanted: Callable[[int, Candle, bool], bool]
                    ) -> Iterator[tuple[int, bool, np.ndarray | None]]:
    """(index, ready, the padded window right after the candle, or None where ``wanted`` says no): the
    stream's own engine fed one candle at a time, as the candle agent feeds it."""
    state = FeatureState()
    for i, candle in enumerate(candles):
        state.update(candle)
        take = wanted(i, candle, state.ready)
        yield i, state.ready, pad_windows(state.window(WINDOW))[0] if take else None


def windows_at(candles: Sequence[Candle], open_times: Sequence[int]) -> np.ndarray:
    """(len(open_times), 60, 41) float32: the window a sequence member reads when the candle of each open
    time (in the order given) closes; what evaluation and distillation score a bundle's sequence member on.

    >>> from core.candle_files import read_candle_file
    >>> from training.dataset import BUNDLED
    >>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:100]
    >>> w = windows_at(eth, [eth[99].open_time, eth[40].open_time])
    >>> w.shape, bool(np.isnan(w[1, :19]).all()), bool(np.isfinite(w[0, -1, 0]))   # 41 candles: 19 padded steps
    ((2, 60, 41), True, True)
    >>> windows_at(eth, [1])
    Traceback (most recent call last):
    ...
    core.errors.ConfigError: ETH-BTC 5m: no candle opens at 1 (asked for a window there)
    """
    where: dict[int, list[int]] = {}
    for i, t in enumerate(open_times):
        where.setdefault(int(t), []).append(i)
    out = np.full((len(open_times), WINDOW, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    found = 0
    for i, _, window in _stream_windows(candles, lambda i, c, ready: c.open_time in where):
        if window is not None:
            out[where[candles[i].open_time]] = window
            found += 1
    if found < len(where):
        missing = min(set(where) - {c.open_time for c in candles})
        head = candles[0] if candles else None
        name = f"{head.symbol} {head.timeframe}" if head else "an empty series"
        raise ConfigError(f"{name}: no candle opens at {missing} (asked for a window there)")
    return out


def _series_windows(candles: Sequence[Candle], horizons: Sequence[int]) -> Windows:
    n = len(candles)
    wins = np.full((n, WINDOW, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    ready = np.zeros(n, dtype=bool)
    for i, is_ready, window in _stream_windows(candles, lambda i, c, ready: ready):
        ready[i] = is_ready
        if window is not None:
            wins[i] = window
    times = np.fromiter((c.open_time for c in candles), dtype=np.int64, count=n)
    close = np.fromiter((c.close for c in candles), dtype=np.float64, count=n)
    step = TIMEFRAME_MS[candles[0].timeframe]
    y = np.zeros((n, len(horizons)), dtype=np.int64)
    known = np.ones(n, dtype=bool)
    for j, h in enumerate(horizons):
        # By time, not position: across a gap "h rows later" is not "h candles later".
        target = np.searchsorted(times, times + h * step)
        ok = target < n
        ok[ok] = times[target[ok]] == times[ok] + h * step
        y[ok, j] = close[target[ok]] > close[ok]
        known &= ok
    last_return = np.full(n, np.nan)
    last_return[1:] = np.log(close[1:] / close[:-1])
    idx = np.flatnonzero(ready & known)
    return Windows(wins[idx], y[idx], times[idx], np.full(len(idx), candles[0].symbol, dtype=object),
                   np.full(len(idx), candles[0].timeframe, dtype=object), last_return[idx])


def build_windows(series: Iterable[Sequence[Candle]], horizons: Sequence[int] = HORIZONS,
                  progress: bool = False) -> Windows:
    """Windows and labels of several series (one per symbol and timeframe), series after series."""
    series = [s for s in series if len(s)]
    if not series:
        raise ConfigError("no candles to build Mamba windows from")
    parts = []
    with tqdm(total=sum(map(len, series)), unit="candle", desc="windows", disable=not progress) as bar:
        for s in series:
            if len({(c.symbol, c.timeframe) for c in s}) > 1:
                raise ConfigError("one series must hold one symbol and timeframe")
            parts.append(_series_windows(s, horizons))
            bar.update(len(s))
    return Windows.concat(parts)


def split_windows(w: Windows, valid_fraction: float = 0.1, test_fraction: float = 0.2,
                  purge: int = max(HORIZONS)) -> tuple[Windows, Windows, Windows]:
    """(train, valid, test): per series in time order, the last ``test_fraction`` of rows is test, the
    ``valid_fraction`` before it valid; rows whose label candle (``t + purge``) reaches the next part are dropped."""
    if not (0 < valid_fraction and 0 < test_fraction and valid_fraction + test_fraction < 1):
        raise ConfigError(f"bad split fractions valid={valid_fraction}, test={test_fraction}")
    parts: list[list[np.ndarray]] = [[], [], []]
    keys = np.char.add(w.symbol.astype(str), np.char.add("|", w.timeframe.astype(str)))
    for key in dict.fromkeys(keys):  # first-seen order keeps the split deterministic
        rows = np.flatnonzero(keys == key)
        rows = rows[np.argsort(w.open_time[rows], kind="stable")]
        n_test, n_valid = round(len(rows) * test_fraction), round(len(rows) * valid_fraction)
        if min(n_test, n_valid, len(rows) - n_test - n_valid) < 1:
            raise ConfigError(f"{key}: {len(rows)} rows are too few to split into train, valid and test")
        chunks = [rows[:-n_test - n_valid], rows[-n_test - n_valid:-n_test], rows[-n_test:]]
        gap = purge * TIMEFRAME_MS[str(w.timeframe[rows[0]])]
        for i in (0, 1):
            nxt = w.open_time[chunks[i + 1][0]]
            chunks[i] = chunks[i][w.open_time[chunks[i]] + gap < nxt]
        for i in range(3):
            parts[i].append(chunks[i])
    train, valid, test = (w.take(np.concatenate(p)) for p in parts)
    return train, valid, test


def normalisation_stats(train: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over the training rows' own feature vectors (the last step of each
    window: one vector per candle, not 60 overlapping copies). All-NaN features give NaN (-> identity)."""
    last = train.x[:, -1].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (fields the feed lacks) are expected
        return np.nanmean(last, axis=0), np.nanstd(last, axis=0)
