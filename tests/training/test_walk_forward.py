"""Walk-forward comparison on real candles: consecutive purged folds, the same rows for both models."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.candle_files import read_candle_file
from streams.regime_change import alternate_moves
from tests.conftest import HELD_OUT
from training.scorer import load_scorer
from training.train import train_horizons_on_series
from training.walk_forward import walk_forward

STEP = 300_000


@pytest.fixture(scope="module")
def changed():
    candles = read_candle_file(HELD_OUT / "ETC-BTC_5m.csv.gz").candles
    return alternate_moves(candles, len(candles) // 2)[len(candles) // 2 - 60:]  # the new market, with warm-up


def test_folds_are_purged_consecutive_and_shared(default_bundle, changed, tmp_path):
    active = load_scorer(default_bundle)
    trained_until = []

    def train(series, out_dir: Path) -> None:
        trained_until.append(max(s[-1].open_time for s in series))
        train_horizons_on_series(series, out_dir, active.horizons, progress=False, num_boost_round=30)

    result = walk_forward([changed], active, train, tmp_path, folds=3, test_fraction=0.3)
    folds = result.folds
    assert len(folds) == 3 and len(result.scored) == 3
    assert [f.test_to for f in folds[:-1]] == [f.test_from for f in folds[1:]]  # consecutive blocks
    assert folds[-1].test_to == changed[-1].open_time + STEP
    for fold, last in zip(folds, trained_until):  # purge: no training label reaches into the block
        assert last < fold.test_from - max(active.horizons) * STEP
        assert fold.rows > 200 and 0 < fold.candidate < 1 and 0 < fold.active < 1
    # The new market: the model trained on it wins on its later folds; the serving bundle is below chance.
    assert result.candidate > result.active and result.active < 0.5
    assert result.to_dict()["folds"][0]["rows"] == folds[0].rows


def test_a_fold_too_short_to_score_is_reported_not_counted(default_bundle, changed, tmp_path):
    active = load_scorer(default_bundle)
    result = walk_forward([changed[:200]], active, lambda s, d: train_horizons_on_series(
        s, d, active.horizons, progress=False, num_boost_round=5), tmp_path, folds=2)
    assert result.candidate is None and all(f.note for f in result.folds if f.candidate is None)
