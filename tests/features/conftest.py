"""Real candle files, loaded once per session, with their streamed and batch features cached."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.candle import Candle
from features import FeatureState, compute_batch

REPO = Path(__file__).resolve().parents[2]
CANDLES_DIR = Path(os.environ.get("CANDLEFLOW_CANDLES_DIR", REPO.parent / "shared" / "data" / "candles"))
FILES = sorted(p.name[: -len(".csv.gz")] for p in CANDLES_DIR.glob("*.csv.gz"))


@dataclass
class Series:
    name: str
    timeframe: str
    rows: np.ndarray  # ts, open, high, low, close, volume
    candles: list[Candle]
    streamed: np.ndarray
    batch: np.ndarray


_CACHE: dict[str, Series] = {}


def load_series(name: str) -> Series:
    if name not in _CACHE:
        with gzip.open(CANDLES_DIR / f"{name}.csv.gz", "rt") as fh:
            rows = np.loadtxt(fh, delimiter=",", skiprows=1, ndmin=2)
        symbol, timeframe = name.rsplit("_", 1)
        candles = [Candle(symbol, timeframe, int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows.tolist()]
        state = FeatureState()
        streamed = np.array([state.update(c) for c in candles])
        _CACHE[name] = Series(name, timeframe, rows, candles, streamed, compute_batch(candles))
    return _CACHE[name]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "series_name" in metafunc.fixturenames:
        metafunc.parametrize("series_name", FILES or [pytest.param(None, marks=pytest.mark.skip("no candle files"))])


@pytest.fixture
def series(series_name: str) -> Series:
    return load_series(series_name)


@pytest.fixture
def real_candles() -> list[Candle]:
    """The candles of one real file (the first, alphabetically)."""
    if not FILES:
        pytest.skip(f"no candle files in {CANDLES_DIR}")
    return load_series(FILES[0]).candles
