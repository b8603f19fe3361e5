"""ModelBundle on a real bundle: equal to its members scored separately, ONNX == native for every
horizon, one ONNX run per member per batch, sequence members through a loader, stats, drop-in."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from models.bundle import ModelBundle
from models.direction import DirectionModel
from models.ensemble import Ensemble, Member
from core.candle_files import read_candle_file
from core.errors import ConfigError
from streams.scoring import score_candles
from tests.conftest import CANDLES
from training.train import HORIZONS


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    return ModelBundle.load(bundle_dir)


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path):
    return shutil.copytree(bundle_dir, tmp_path / "bundle")


class FakeSequenceModel:
    """The sequence model's protocol: windows (n, 60, 41) -> (n, 5), ``version``, ``horizons``."""

    version = "mamba-test-1"
    horizons = HORIZONS

    def __init__(self, path=None):
        self.path = path

    def predict_proba(self, windows):
        # Depends on the input so a mix-up of rows would show: the mean of each window's last row, squashed.
        z = np.asarray(windows)[:, -1, :].mean(axis=1, keepdims=True)
        return 1 / (1 + np.exp(-z)) * np.linspace(0.9, 1.1, 5)[None] / 1.1


def test_score_equals_the_horizon_models_scored_separately(bundle_dir, real_rows):
    # ONNX Runtime on both sides (the compiled runtime's equality is tests/models/test_compiled_trees.py).
    bundle = ModelBundle.load(bundle_dir, tree_runtime="onnx")
    out = bundle.score(real_rows)
    separately = np.column_stack([DirectionModel.load(bundle_dir / f"h{h}").predict_proba(real_rows) for h in HORIZONS])
    assert out.horizons == HORIZONS and out.prob_up.shape == (len(real_rows), 5)
    np.testing.assert_allclose(out.prob_up, separately, rtol=0, atol=1e-7)
    np.testing.assert_allclose(out.confidence, np.abs(2 * separately - 1), atol=1e-7)  # one member: decide()'s rule
    assert out.versions == {"lgbm": bundle.ensemble.members[0].version} and out.missing == ("mamba",)
    assert out.version == bundle.version


def test_onnx_matches_native_lightgbm_for_every_horizon(bundle, bundle_info, real_rows):
    lgbm = bundle.ensemble.members[0].model
    onnx_p = lgbm.predict_proba(real_rows)
    for j, h in enumerate(HORIZONS):
        native = bundle_info.models[h].booster.predict(real_rows.astype(np.float32).astype(np.float64))
        assert np.max(np.abs(onnx_p[:, j] - native)) < 1e-5, h


def test_one_onnx_run_per_batch(bundle_dir, real_rows):
    bundle = ModelBundle.load(bundle_dir, tree_runtime="onnx")
    lgbm = bundle.ensemble.members[0].model
    calls = []
    real_session = lgbm._session

    class Counting:
        def run(self, *args, **kwargs):
            calls.append(1)
            return real_session.run(*args, **kwargs)

    lgbm._session = Counting()
    bundle.score(real_rows[:300])
    bundle.score(real_rows[:1])
    assert len(calls) == 2


def test_sequence_member_through_a_loader(bundle_copy, real_rows):
    (bundle_copy / "mamba").mkdir()
    bundle = ModelBundle.load(bundle_copy, sequence_loader=FakeSequenceModel)
    windows = np.random.default_rng(0).normal(size=(len(real_rows), 60, 41))
    out = bundle.score(real_rows, windows)
    assert out.versions["mamba"] == "mamba-test-1" and out.missing == ()
    # The same members by hand, through a plain Ensemble: the bundle adds timing, nothing else.
    lgbm = bundle.ensemble.members[0]
    by_hand = Ensemble([lgbm, Member("mamba", FakeSequenceModel(), reads="windows")]).score(real_rows, windows)
    np.testing.assert_array_equal(out.prob_up, by_hand.prob_up)
    np.testing.assert_array_equal(out.confidence, by_hand.confidence)
    expected = (lgbm.model.predict_proba(real_rows) + FakeSequenceModel().predict_proba(windows)) / 2
    np.testing.assert_allclose(out.prob_up, expected, atol=1e-12)
    assert bundle.version != ModelBundle.load(bundle_copy).version  # members differ -> version differs
    without_windows = bundle.score(real_rows)
    assert without_windows.missing == ("mamba",) and set(without_windows.versions) == {"lgbm"}


def test_sequence_dir_without_loader_is_reported(bundle_copy, caplog):
    (bundle_copy / "mamba").mkdir()
    with caplog.at_level(logging.WARNING):
        bundle = ModelBundle.load(bundle_copy)
    assert "no sequence loader" in caplog.text
    assert bundle.score(np.zeros((1, 41))).missing == ("mamba",)


def test_version_is_deterministic_and_follows_the_configuration(bundle_dir):
    a, b = ModelBundle.load(bundle_dir), ModelBundle.load(bundle_dir)
    assert a.version == b.version and a.version.startswith("ens-")
    majority = ModelBundle.load(bundle_dir, strategy="majority")
    assert majority.strategy == "majority" and majority.version != a.version
    assert ModelBundle.load(bundle_dir, weights={"lgbm": 2.0}).version != a.version


def test_strategy_from_bundle_json(bundle_copy):
    raw = json.loads((bundle_copy / "bundle.json").read_text())
    raw["strategy"] = "unanimous"
    (bundle_copy / "bundle.json").write_text(json.dumps(raw))
    assert ModelBundle.load(bundle_copy).strategy == "unanimous"


def test_replaced_horizon_model_is_refused(bundle_copy):
    shutil.rmtree(bundle_copy / "h2")
    shutil.copytree(bundle_copy / "h3", bundle_copy / "h2")
    with pytest.raises(ConfigError, match="horizon 3 model, expected horizon 2"):
        ModelBundle.load(bundle_copy)


def test_missing_horizon_directory(bundle_copy):
    shutil.rmtree(bundle_copy / "h4")
    with pytest.raises(ConfigError, match="h4/model.json: model metadata not found"):
        ModelBundle.load(bundle_copy)


def test_bundle_json_versions_must_match(bundle_copy):
    raw = json.loads((bundle_copy / "bundle.json").read_text())
    raw["members"]["lgbm"]["h1"] = "lgbm-h1-000000000000"
    (bundle_copy / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="replaced without its bundle"):
        ModelBundle.load(bundle_copy)


def test_missing_bundle_json(bundle_copy):
    (bundle_copy / "bundle.json").unlink()
    with pytest.raises(ConfigError, match="bundle configuration not found"):
        ModelBundle.load(bundle_copy)


def test_stats(bundle_dir, real_rows):
    bundle = ModelBundle.load(bundle_dir, stats_size=4)
    assert bundle.stats()["members"]["lgbm"]["calls"] == 0  # the warm-up does not count
    for n in (1, 64, 1, 5, 300):
        bundle.score(real_rows[:n])
    s = bundle.stats()
    lgbm = s["members"]["lgbm"]
    assert lgbm["calls"] == 5 and lgbm["rows"] == 371 and lgbm["window"] == 4
    assert lgbm["last_batch"] == 300 and lgbm["max_batch"] == 300 and lgbm["mean_batch"] == pytest.approx(92.5)
    assert 0 < lgbm["p50_us"] <= lgbm["p99_us"] and lgbm["provider"] == "lleaves-cpu"
    assert s["score"]["calls"] == 5 and s["missing"] == ["mamba"] and s["version"] == bundle.version
    json.dumps(s)  # ready for a web view


def test_drop_in_for_direction_model_in_score_candles(bundle, bundle_dir):
    candles = read_candle_file(sorted(CANDLES.glob("*.csv.gz"))[0]).candles[-300:]
    with_bundle = score_candles([(c, None) for c in candles], {}, bundle, threshold=0.05)
    h1 = DirectionModel.load(bundle_dir / "h1")
    with_h1 = score_candles([(c, None) for c in candles], {}, h1, threshold=0.05)
    assert len(with_bundle.predictions) == len(candles)
    np.testing.assert_allclose([p["prob_up"] for p in with_bundle.predictions],
                               [p["prob_up"] for p in with_h1.predictions], atol=1e-7)
    assert {p["model_version"] for p in with_bundle.predictions} == {bundle.version}
    assert {p["horizon"] for p in with_bundle.predictions} == {1}
    assert len(with_bundle.signals) == len(with_h1.signals)


def test_predict_proba_one(bundle, real_rows):
    assert bundle.predict_proba_one(real_rows[-1]) == pytest.approx(bundle.predict_proba(real_rows[-1:])[0])
