"""Real-candle fixtures for the learning tests: the bundled candles run through the feature engine, a fixed
model version and the Labeller, once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from learning.labelling import Labelled, Labeller
from learning.online import OnlineModel
from core.signals import decide, prediction_id
from core.candle_files import read_candle_file
from features import FeatureState
from training.dataset import series_rows

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"  # bundled in the repo: ETH-BTC, LTC-BTC 5m
SERIES = ("ETH-BTC_5m.csv.gz", "LTC-BTC_5m.csv.gz")


@dataclass
class Replay:
    """What the outcome loop sees for one real series under a fixed model version."""

    symbol: str
    model: OnlineModel
    training_accuracy: float
    return_std: float
    reference: np.ndarray
    labelled: list[Labelled]


def _replay(name: str) -> Replay:
    candles = read_candle_file(CANDLES / name).candles
    ds = series_rows(candles, horizon=1)
    # The "deployed" version: fitted on this series (two passes), then frozen. Replaying the same period
    # is by construction unchanged data for it; the real candles still bring their noise, fat tails,
    # flat candles, gaps and volatility regimes.
    model = OnlineModel(horizon=1)
    for _ in range(2):
        for x, y in zip(ds.X, ds.y):
            model.learn_one(x, y)
    training_accuracy = float(np.mean([model.predict_one(x) == y for x, y in zip(ds.X, ds.y)]))
    state, labeller, labelled = FeatureState(), Labeller(candles[0].symbol, candles[0].timeframe), []
    for c in candles:
        features = state.update(c)
        labelled += labeller.observe(c)
        if state.ready:
            p = model.predict_proba_one(features)
            labeller.add_prediction({
                "id": prediction_id(c.symbol, c.timeframe, c.open_time, model.version), "symbol": c.symbol,
                "timeframe": c.timeframe, "open_time": c.open_time, "close": c.close, "horizon": 1,
                "direction": decide(p, 0.5).direction, "model_version": model.version,
                "features": features.tolist()})
    return Replay(candles[0].symbol, model, training_accuracy, float(np.std(ds.meta.future_return)), ds.X, labelled)


@pytest.fixture(scope="session")
def replays() -> list[Replay]:
    return [_replay(name) for name in SERIES]
