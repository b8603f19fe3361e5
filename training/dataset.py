"""Supervised rows from candle series: features from the streaming engine, direction labels, time split.

Features come from :class:`features.FeatureState` fed one candle at a time, exactly as the
candle agent feeds it, so training and serving cannot disagree. A row at open time ``t`` therefore
uses only candles ``<= t``; its label is the only thing that looks ahead, by ``horizon`` candles:
``y = 1`` if ``close[t + horizon] > close[t]``. Rows whose future candle is missing (end of the data or
a gap) or whose feature state is not ``ready`` yet are left out.

>>> from core.candle_files import read_candle_file
>>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:600]
>>> ds = build_dataset([eth], horizon=1)
>>> ds.X.shape[1] == len(ds.feature_names), len(ds) == len(ds.y) == len(ds.meta.open_time) < 600
(True, True)
>>> train, valid = time_split(ds, valid_fraction=0.2)
>>> int(train.meta.open_time.max()) < int(valid.meta.open_time.min())
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from core.candle import TIMEFRAME_MS, Candle
from core.errors import ConfigError
from features import FEATURE_NAMES, FeatureState

__all__ = ["BUNDLED", "Dataset", "RowMeta", "build_dataset", "build_datasets", "series_rows", "time_split"]

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "candles"  # real candles shipped with the repo


@dataclass(frozen=True)
class RowMeta:
    """Per-row facts that are not model inputs: where the row comes from and what happened next."""

    symbol: np.ndarray          # str
    timeframe: np.ndarray       # str
    open_time: np.ndarray       # int64 epoch ms of the candle the row describes
    future_return: np.ndarray   # log(close[t+h] / close[t]), the quantity the label thresholds
    last_return: np.ndarray     # log(close[t] / close[t-1]); NaN for a series' first candle (baselines)

    def take(self, index: np.ndarray) -> RowMeta:
        return RowMeta(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, parts: Sequence[RowMeta]) -> RowMeta:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass(frozen=True)
class Dataset:
    """``X`` (n, n_features) float64 in ``feature_names`` order, ``y`` (n,) int 0/1, and ``meta``."""

    X: np.ndarray
    y: np.ndarray
    meta: RowMeta
    feature_names: tuple[str, ...]
    horizon: int

    def __len__(self) -> int:
        return len(self.y)

    def __iter__(self):
        """``X, y, meta = dataset``."""
        return iter((self.X, self.y, self.meta))

    def take(self, index: np.ndarray) -> Dataset:
        return Dataset(self.X[index], self.y[index], self.meta.take(index), self.feature_names, self.horizon)


def _check_series(candles: Sequence[Candle]) -> None:
    keys = {(c.symbol, c.timeframe) for c in candles}
    if len(keys) > 1:
        raise ConfigError(f"one series must hold one symbol and timeframe, got {sorted(keys)}")
    times = np.fromiter((c.open_time for c in candles), dtype=np.int64, count=len(candles))
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise ConfigError(f"{candles[0].symbol} {candles[0].timeframe}: candles are not in strictly increasing time order")


@dataclass(frozen=True)
class _SeriesFeatures:
    """One series' feature rows, computed once and labelled for as many horizons as asked."""

    X: np.ndarray
    ready: np.ndarray
    times: np.ndarray
    close: np.ndarray
    step: int
    symbol: str
    timeframe: str


def _series_features(candles: Sequence[Candle]) -> _SeriesFeatures:
    _check_series(candles)
    n, width = len(candles), len(FEATURE_NAMES)
    X = np.empty((n, width), dtype=np.float64)
    ready = np.zeros(n, dtype=bool)
    state = FeatureState()
    for i, candle in enumerate(candles):
        X[i] = state.update(candle)  # the stream's own engine, one candle at a time
        ready[i] = state.ready
    times = np.fromiter((c.open_time for c in candles), dtype=np.int64, count=n)
    close = np.fromiter((c.close for c in candles), dtype=np.float64, count=n)
    step = TIMEFRAME_MS[candles[0].timeframe] if n else 0
    symbol, timeframe = (candles[0].symbol, candles[0].timeframe) if n else ("", "")
    return _SeriesFeatures(X, ready, times, close, step, symbol, timeframe)


def _label(f: _SeriesFeatures, horizon: int, dead_zone: float | None) -> Dataset:
    if horizon < 1:
        raise ConfigError(f"horizon must be at least 1, got {horizon}")
    n = len(f.times)
    # The label's candle is found by time, not by position: across a gap, "h rows later" is not "h candles later".
    target = np.searchsorted(f.times, f.times + horizon * f.step)
    known = target < n
    known[known] = f.times[target[known]] == f.times[known] + horizon * f.step
    future_return = np.full(n, np.nan)
    future_return[known] = np.log(f.close[target[known]] / f.close[known])
    last_return = np.full(n, np.nan)
    last_return[1:] = np.log(f.close[1:] / f.close[:-1])
    # Warm-up rows are dropped; NaN that remains after warm-up (a field the feed lacks, such as trade
    # counts in OHLCV-only data) stays: LightGBM and its ONNX export treat it as "missing".
    keep = known & f.ready
    if dead_zone is not None:
        keep &= np.abs(future_return) > dead_zone
    idx = np.flatnonzero(keep)
    meta = RowMeta(np.full(len(idx), f.symbol, dtype=object), np.full(len(idx), f.timeframe, dtype=object),
                   f.times[idx], future_return[idx], last_return[idx])
    return Dataset(f.X[idx], (future_return[idx] > 0).astype(np.int64), meta, tuple(FEATURE_NAMES), horizon)


def series_rows(candles: Sequence[Candle], horizon: int = 1, dead_zone: float | None = 0.0) -> Dataset:
    """The rows of one (symbol, timeframe) series, in time order. ``dead_zone``: drop rows with
    ``|future_return| <= dead_zone`` (0 drops exact ties; None keeps them, labelled 0 = "not up")."""
    if horizon < 1:
        raise ConfigError(f"horizon must be at least 1, got {horizon}")
    return _label(_series_features(candles), horizon, dead_zone)


def build_datasets(series: Iterable[Sequence[Candle]], horizons: Sequence[int] = (1,),
                   dead_zone: float | None = 0.0, progress: bool = False) -> dict[int, Dataset]:
    """One dataset per horizon from the same feature rows: the (costly) features are computed once.

    >>> from core.candle_files import read_candle_file
    >>> eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:300]
    >>> by_h = build_datasets([eth], horizons=(1, 3))
    >>> sorted(by_h), by_h[3].horizon, len(by_h[3]) <= len(by_h[1]) + 2
    ([1, 3], 3, True)
    """
    horizons = tuple(horizons)
    if not horizons or any(h < 1 for h in horizons) or len(set(horizons)) != len(horizons):
        raise ConfigError(f"horizons must be distinct positive integers, got {horizons}")
    series = [s for s in series if len(s)]
    seen: set[tuple[str, str]] = set()
    for s in series:
        key = (s[0].symbol, s[0].timeframe)
        if key in seen:  # two files of one series would interleave two feature states' worth of rows
            raise ConfigError(f"{key[0]} {key[1]} is given twice; merge its candles into one series")
        seen.add(key)
    parts: dict[int, list[Dataset]] = {h: [] for h in horizons}
    with tqdm(total=sum(map(len, series)), unit="candle", desc="features", disable=not progress) as bar:
        for s in series:
            features = _series_features(s)
            for h in horizons:
                parts[h].append(_label(features, h, dead_zone))
            bar.update(len(s))
    if not series:
        raise ConfigError("no candles to build a dataset from")
    return {h: Dataset(np.vstack([p.X for p in ps]), np.concatenate([p.y for p in ps]),
                       RowMeta.concat([p.meta for p in ps]), tuple(FEATURE_NAMES), h)
            for h, ps in parts.items()}


def build_dataset(series: Iterable[Sequence[Candle]], horizon: int = 1, dead_zone: float | None = 0.0,
                  progress: bool = False) -> Dataset:
    """Rows of several series (e.g. one per candle file), concatenated series after series."""
    if horizon < 1:
        raise ConfigError(f"horizon must be at least 1, got {horizon}")
    return build_datasets(series, (horizon,), dead_zone, progress)[horizon]


def time_split(ds: Dataset, valid_fraction: float = 0.2) -> tuple[Dataset, Dataset]:
    """(train, valid): the last ``valid_fraction`` of each series' rows is validation.

    Training rows whose label candle (``t + horizon``) falls inside the validation period are purged,
    so no training label was taken from the time the model is evaluated on.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    train_idx, valid_idx = [], []
    keys = np.char.add(ds.meta.symbol.astype(str), np.char.add("|", ds.meta.timeframe.astype(str)))
    for key in dict.fromkeys(keys):  # first-seen order keeps the split deterministic
        rows = np.flatnonzero(keys == key)
        rows = rows[np.argsort(ds.meta.open_time[rows], kind="stable")]
        n_valid = round(len(rows) * valid_fraction)
        if n_valid == 0 or n_valid == len(rows):
            raise ConfigError(f"{key}: {len(rows)} rows are too few to split {valid_fraction:.0%} off for validation")
        train, valid = rows[:-n_valid], rows[-n_valid:]
        label_ms = ds.horizon * TIMEFRAME_MS[str(ds.meta.timeframe[rows[0]])]
        train = train[ds.meta.open_time[train] + label_ms < ds.meta.open_time[valid[0]]]
        train_idx.append(train)
        valid_idx.append(valid)
    return ds.take(np.concatenate(train_idx)), ds.take(np.concatenate(valid_idx))
