"""The default bundle with a Mamba member in step mode, in the batch step on real candles: one step per
candle with each series' recurrent state in the series book, the same for any batching and across a
restart (the state is checkpointed with the series), and a version new to a series warmed from its window."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from models.loading import load_model
from models.mamba import MambaModel
from models.mamba.classifier import MambaConfig
from core.candle_files import read_candle_file
from streams.scoring import step_members
from streams.series import Position, SeriesState
from streams.series_book import SeriesBook
from streams.step import Models, StepConfig, process_batch
from tests.conftest import CANDLES, HELD_OUT
from training.mamba import train_mamba_on_series

CONFIG = StepConfig(threshold=0.3)


@pytest.fixture(scope="module")
def bundle(default_bundle, tmp_path_factory):
    """The default LightGBM bundle plus a Mamba member (default architecture, briefly trained on real candles)."""
    out = tmp_path_factory.mktemp("bundle-with-mamba") / "bundle"
    shutil.copytree(default_bundle, out)
    candles = read_candle_file(CANDLES / "ETH-BTC_5m.csv.gz").candles[:1500]
    train_mamba_on_series([candles], out / "mamba", progress=False, config=MambaConfig(), epochs=1, threads=1)
    model = load_model(out)
    model.mamba_dir = out / "mamba"
    return model


@pytest.fixture(scope="module")
def stream():
    series = [read_candle_file(f).candles[-200:] for f in (CANDLES / "LTC-BTC_5m.csv.gz", HELD_OUT / "ETC-BTC_5m.csv.gz")]
    return [(c, None, Position("c", k, i)) for i in range(200) for k, c in enumerate(s[i] for s in series)]


def run(stream, bundle, size, book=None, start=0):
    book = book or SeriesBook()
    out = []
    for i in range(start, len(stream), size):
        out += process_batch(stream[i:i + size], book, Models(bundle), CONFIG).predictions
    return out, book


def probabilities(predictions):
    return np.array([[h["prob_up"] for h in p["horizons"]] for p in predictions])


def test_the_mamba_member_steps_once_per_candle_with_its_state_in_the_book(bundle, stream):
    [mamba] = step_members(bundle)
    predictions, book = run(stream, bundle, 50)
    assert len(predictions) == len(stream) and all("mamba" in p["model_versions"] for p in predictions)
    for key in ("LTC-BTC|5m", "ETC-BTC|5m"):
        state = book.sequences.state(key, mamba.model.version)
        assert state.shape == (mamba.model.state_size,) and np.isfinite(state).all() and np.abs(state).max() > 0


@pytest.mark.parametrize("size", [1, 7, 400])
def test_any_batching_gives_the_same_predictions(bundle, stream, size):
    reference, _ = run(stream, bundle, 50)
    predictions, _ = run(stream, bundle, size)
    assert [p["id"] for p in predictions] == [p["id"] for p in reference]
    np.testing.assert_allclose(probabilities(predictions), probabilities(reference), rtol=0, atol=1e-6)


def test_a_restart_from_the_checkpointed_series_continues_the_same(bundle, stream):
    reference, _ = run(stream, bundle, 50)
    first, book = run(stream[:200], bundle, 50)
    restored = SeriesBook()
    for key, blob in zip(sorted(book), book.states_bytes(sorted(book))):
        restored.load(key, SeriesState.from_bytes(blob))  # what a restarted worker reads from the table
    rest, _ = run(stream, bundle, 50, restored, start=200)
    np.testing.assert_allclose(probabilities(first + rest), probabilities(reference), rtol=0, atol=1e-6)


def test_a_version_new_to_a_series_starts_from_its_window(bundle, stream):
    [mamba] = step_members(bundle)
    _, book = run(stream[:300], bundle, 50)
    key = "ETC-BTC|5m"
    window = book.window(key)
    assert len(window) == 60
    book.sequences.forget([key])  # e.g. a hot-reloaded version: no state yet
    cold = book.sequences.states_of([key], mamba.model, behind=[1])
    p_step, _ = mamba.model.step(window[-1:], cold)
    p_window = MambaModel.load(bundle.mamba_dir).predict_proba(window[None])  # the 60-candle window forward
    np.testing.assert_allclose(p_step, p_window, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [2, 50])  # one candle of each series a batch (steps), several (scans)
def test_series_handed_over_in_groups_give_what_one_call_gives(bundle, stream, size, monkeypatch):
    [mamba] = step_members(bundle)
    reference, reference_book = run(stream, bundle, size)
    monkeypatch.setattr(mamba.model, "series_per_call", 1)  # each series of a batch in a call of its own
    predictions, book = run(stream, bundle, size)
    np.testing.assert_allclose(probabilities(predictions), probabilities(reference), rtol=0, atol=1e-6)
    for key in ("LTC-BTC|5m", "ETC-BTC|5m"):
        np.testing.assert_allclose(book.sequences.state(key, mamba.model.version),
                                   reference_book.sequences.state(key, mamba.model.version), rtol=0, atol=1e-6)
