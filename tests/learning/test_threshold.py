"""The adaptive signal threshold with the default bundle on real candles: conservative after a regime change,
untouched on a market the model reads well, the same for any batching and across a restart."""

from __future__ import annotations

import pytest

from learning.learner import OutcomeLearner
from models.loading import load_model
from core.candle_files import read_candle_file
from streams.regime_change import alternate_moves
from streams.series import Position
from streams.series_book import SeriesBook
from core.settings import Settings
from streams.step import Models, StepConfig, process_batch
from tests.conftest import CANDLES

STEP_MS = 300_000
CONFIG = StepConfig.from_settings(Settings(adaptive_threshold=True))  # threshold 0.3 adapting up to 0.6


@pytest.fixture(scope="module")
def bundle(default_bundle):
    return load_model(default_bundle)


def series(changed: bool) -> tuple[list, int]:
    candles = read_candle_file(CANDLES / "LTC-BTC_5m.csv.gz").candles[-3000:]
    change = 1500
    return (alternate_moves(candles, change) if changed else candles), candles[change].open_time


def run(candles, bundle, size, learner=None, book=None, start=0):
    book, learner = book or SeriesBook(), learner or OutcomeLearner()
    learner.arm_models([bundle])
    events, signals = [], []
    for i in range(start, len(candles), size):
        batch = [(c, None, Position("c", 0, i + j)) for j, c in enumerate(candles[i:i + size])]
        result = process_batch(batch, book, Models(bundle), CONFIG, lambda k: ("p0", learner))
        events += result.threshold_events
        signals += [s["id"] for s in result.signals]
    return events, signals, learner, book


def test_signals_that_lose_after_a_regime_change_make_the_threshold_conservative(bundle):
    candles, changed_at = series(changed=True)
    events, _, learner, _ = run(candles, bundle, 50)
    assert events, "the threshold never moved although the signals lost after the change"
    first = events[0]
    assert first["at"] > changed_at and (first["at"] - changed_at) // STEP_MS <= 1000
    assert first["to"] > first["from"] == CONFIG.threshold and first["mode"] == "conservative"
    assert first["hit_rate"] < 0.5 or first["mean_pnl"] < 0
    assert all(CONFIG.threshold <= e["to"] <= CONFIG.adaptive.ceiling for e in events)
    assert learner.threshold(bundle.version, CONFIG.threshold) > CONFIG.threshold
    assert learner.thresholds[bundle.version].state()["mode"] == "conservative"


def test_a_market_the_model_reads_well_keeps_the_configured_threshold(bundle):
    candles, _ = series(changed=False)
    events, signals, learner, _ = run(candles, bundle, 50)
    assert events == [] and len(signals) > 1000
    assert learner.threshold(bundle.version, CONFIG.threshold) == CONFIG.threshold


@pytest.mark.parametrize("size", [1, 7, 500])
def test_the_same_candles_in_any_batches_move_it_the_same_way(bundle, size):
    candles, _ = series(changed=True)
    reference_events, reference_signals, _, _ = run(candles, bundle, 50)
    events, signals, _, _ = run(candles, bundle, size)
    assert events == reference_events and signals == reference_signals


def test_a_restart_mid_stream_keeps_it(bundle):
    from streams.series import SeriesState

    candles, _ = series(changed=True)
    reference_events, reference_signals, _, _ = run(candles, bundle, 50)
    events, signals, learner, book = run(candles[:2000], bundle, 50)
    # What a checkpoint stores and a restarted worker reads back: the learner and every series.
    restored = OutcomeLearner.from_bytes(learner.to_bytes())
    again = SeriesBook()
    for key in list(book.labellers):
        again.load(key, SeriesState.from_bytes(book.states_bytes([key])[0]))
    more_events, more_signals, _, _ = run(candles, bundle, 50, restored, again, start=2000)
    assert events + more_events == reference_events and signals + more_signals == reference_signals
