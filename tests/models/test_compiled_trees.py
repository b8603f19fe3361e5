"""The compiled CPU tree runtime (models/compiled_trees.py) on a real bundle: LightGBM's own output bit for
bit, ONNX Runtime's within the float32 sums, and ONNX Runtime whenever the compiled set cannot be trusted."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pytest

from core.errors import ConfigError
from core.settings import Settings
from models.bundle import ModelBundle
from models.compiled_trees import SMALL_BATCH, CompiledTrees, compile_trees
from models.direction import DirectionHorizons
from models.metadata import METADATA_FILE, NATIVE_FILE, ModelMetadata
from models.providers import CPU
from training.train import HORIZONS


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path):
    return shutil.copytree(bundle_dir, tmp_path / "bundle")


def _horizons(bundle_dir, **options):
    return DirectionHorizons.load({h: bundle_dir / f"h{h}" for h in HORIZONS}, **options)


def test_compiled_equals_native_lightgbm_and_onnx_runtime(bundle_dir, real_rows):
    compiled, onnx = _horizons(bundle_dir), _horizons(bundle_dir, tree_runtime="onnx")
    assert compiled.provider == "lleaves-cpu" and onnx.provider == CPU
    assert compiled.version == onnx.version  # the runtime is not part of what the model is
    got = compiled.predict_proba(real_rows)
    rows32 = real_rows.astype(np.float32).astype(np.float64)  # what the served model receives
    for j, h in enumerate(HORIZONS):
        native = lgb.Booster(model_file=str(bundle_dir / f"h{h}" / NATIVE_FILE)).predict(rows32)
        np.testing.assert_array_equal(got[:, j], native)
    diff = np.abs(got - onnx.predict_proba(real_rows)).max()
    assert 0 < diff < 1e-6  # ONNX Runtime sums in float32; the compiled trees in float64


def test_a_bundle_serves_through_the_compiled_trees(bundle_dir, real_rows):
    bundle = ModelBundle.load(bundle_dir)
    onnx = ModelBundle.load(bundle_dir, tree_runtime="onnx")
    assert bundle.version == onnx.version
    assert bundle.stats()["members"]["lgbm"]["provider"] == "lleaves-cpu"
    np.testing.assert_allclose(bundle.score(real_rows).prob_up, onnx.score(real_rows).prob_up, rtol=0, atol=1e-6)


def test_without_model_txt_onnx_runtime_serves(bundle_copy, real_rows, caplog):
    (bundle_copy / "h3" / NATIVE_FILE).unlink()
    with caplog.at_level(logging.INFO, logger="models.compiled_trees"):
        lgbm = _horizons(bundle_copy)
    assert lgbm.provider == CPU and "has no readable model.txt" in caplog.text


def test_a_model_txt_that_is_not_the_described_one_is_not_compiled(bundle_copy, caplog):
    path = bundle_copy / "h2" / NATIVE_FILE
    path.write_text(path.read_text().replace("leaf_value=", "leaf_value=0.5 ", 1))
    with caplog.at_level(logging.WARNING, logger="models.compiled_trees"):
        lgbm = _horizons(bundle_copy)
    assert lgbm.provider == CPU and "does not match model.json" in caplog.text


def test_compiled_trees_that_differ_from_onnx_are_refused(bundle_copy, real_rows, caplog):
    # Another horizon's trees, with metadata pointing at them: the digest matches, the output does not.
    h1, h2 = bundle_copy / "h1", bundle_copy / "h2"
    shutil.copyfile(h2 / NATIVE_FILE, h1 / NATIVE_FILE)
    metadata = ModelMetadata.from_json((h1 / METADATA_FILE).read_text())
    digest = hashlib.sha256((h1 / NATIVE_FILE).read_bytes()).hexdigest()
    (h1 / METADATA_FILE).write_text(dataclasses.replace(metadata, native_sha256=digest).to_json())
    with caplog.at_level(logging.WARNING, logger="models.compiled_trees"):
        lgbm = _horizons(bundle_copy)
    assert lgbm.provider == CPU and "differ from it" in caplog.text
    # And what serves is ONNX Runtime's (h1's own trees), not the swapped text.
    np.testing.assert_allclose(lgbm.predict_proba(real_rows),
                               _horizons(bundle_copy, tree_runtime="onnx").predict_proba(real_rows), rtol=0, atol=0)


def test_the_cache_holds_one_file_per_model_and_host_and_gives_the_same_output(bundle_dir, real_rows, tmp_path):
    dirs = [bundle_dir / f"h{h}" for h in HORIZONS]
    first = compile_trees(dirs, cache_dir=tmp_path)
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert len(cached) == len(HORIZONS) and all(n.endswith(".o") and not n.startswith(".") for n in cached)
    again = compile_trees(dirs, cache_dir=tmp_path)  # from the cache: the same files, the same output
    assert sorted(p.name for p in tmp_path.iterdir()) == cached
    np.testing.assert_array_equal(again.predict_proba(real_rows), first.predict_proba(real_rows))
    uncached = compile_trees(dirs, cache_dir=None)
    np.testing.assert_array_equal(uncached.predict_proba(real_rows), first.predict_proba(real_rows))


def test_unknown_runtime_is_a_config_error(bundle_dir):
    with pytest.raises(ConfigError, match="tree_runtime must be auto or onnx"):
        _horizons(bundle_dir, tree_runtime="treelite")
    with pytest.raises(ConfigError, match="CANDLEFLOW_TREE_RUNTIME must be auto or onnx"):
        Settings.from_env({"CANDLEFLOW_TREE_RUNTIME": "fast"})
    assert Settings.from_env({"CANDLEFLOW_TREE_RUNTIME": "onnx"}).tree_runtime == "onnx"


def test_the_direct_call_equals_lleaves_predict(bundle_dir, real_rows):
    trees = compile_trees([bundle_dir / f"h{h}" for h in HORIZONS], cache_dir=None)
    through_predict = CompiledTrees(trees._models, trees.n_features)
    through_predict._entries = (None,) * len(HORIZONS)  # as with an lleaves without the execution engine
    for n in (0, 1, 7, len(real_rows)):
        np.testing.assert_array_equal(trees.predict_proba(real_rows[:n]), through_predict.predict_proba(real_rows[:n]))
    with pytest.raises(ValueError, match="expected an array of shape"):
        trees.predict_proba(real_rows[:, :5])


def test_small_batches_through_each_threads_buffers_equal_the_batch_path(bundle_dir, real_rows):
    trees = compile_trees([bundle_dir / f"h{h}" for h in HORIZONS], cache_dir=None)
    rows = np.resize(real_rows, (3 * SMALL_BATCH, real_rows.shape[1]))
    whole = trees.predict_proba(rows)  # > SMALL_BATCH rows: the batch path
    first = trees.predict_proba(rows[:1])
    for n in (2, SMALL_BATCH - 1, SMALL_BATCH, SMALL_BATCH + 1):
        np.testing.assert_array_equal(trees.predict_proba(rows[:n]), whole[:n])
    np.testing.assert_array_equal(first, whole[:1])  # what was returned is the caller's, not the buffer

    def score_slices(start: int) -> list[bool]:  # threads scoring at once each use their own buffers
        return [np.array_equal(trees.predict_proba(rows[i:i + 3]), whole[i:i + 3])
                for _ in range(200) for i in range(start, start + 20)]

    with ThreadPoolExecutor(4) as pool:
        assert all(all(ok) for ok in pool.map(score_slices, (0, 30, 60, 90)))


def test_a_cache_that_cannot_be_created_compiles_anyway(bundle_dir, real_rows, tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    with caplog.at_level(logging.WARNING, logger="models.compiled_trees"):
        trees = compile_trees([bundle_dir / "h1"], cache_dir=tmp_path / "a-file" / "cache")
    assert trees is not None and "not cached" in caplog.text
    np.testing.assert_array_equal(trees.predict_proba(real_rows)[:, 0],
                                  compile_trees([bundle_dir / "h1"], cache_dir=None).predict_proba(real_rows)[:, 0])
