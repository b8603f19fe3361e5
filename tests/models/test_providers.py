"""Provider choice: configuration overrides, the provider read from the session, logged once, fallback."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest

import models.onnx_session as onnx_session
from models.direction import DirectionHorizons
from models.onnx_session import P_UP_OUTPUT, create_session, merge_p_up
from models.providers import CPU, PROVIDER_PREFERENCE, ProviderLog, parse_providers
from core.errors import ConfigError
from training.train import HORIZONS

GPU_BUILD_WITHOUT_GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
pytestmark = pytest.mark.filterwarnings("ignore:Specified provider .* is not in available provider names")


@pytest.fixture
def onnx_bytes(bundle_dir):
    return (bundle_dir / "h1" / "model.onnx").read_bytes()


@pytest.fixture
def fresh_log(monkeypatch):
    monkeypatch.setattr(onnx_session, "_PROVIDER_LOG", ProviderLog())


def test_parse_providers():
    assert parse_providers("tensorrt,CUDA, cpu") == PROVIDER_PREFERENCE
    assert parse_providers(["CPUExecutionProvider"]) == (CPU,)
    assert parse_providers("") == PROVIDER_PREFERENCE and parse_providers(None) == PROVIDER_PREFERENCE
    assert parse_providers("cpu,cpu") == (CPU,)
    with pytest.raises(ConfigError, match="unknown"):
        parse_providers("gpu")


def test_default_is_read_from_the_session_and_logged_once(onnx_bytes, monkeypatch, caplog, fresh_log):
    """onnxruntime-gpu without a GPU lists CUDA/TensorRT as available; the session really runs on CPU."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU_BUILD_WITHOUT_GPU)
    with caplog.at_level(logging.INFO, logger="models.providers"):
        for _ in range(3):
            _, provider = create_session(onnx_bytes)
            assert provider == CPU
    records = [r for r in caplog.records if r.name == "models.providers"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING and CPU in records[0].getMessage()


def test_explicit_list_is_honoured_strictly(onnx_bytes, monkeypatch, fresh_log):
    assert create_session(onnx_bytes, "cpu")[1] == CPU
    with pytest.raises(ConfigError, match="none of the ONNX Runtime providers"):
        create_session(onnx_bytes, "tensorrt")  # not even listed by this build
    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU_BUILD_WITHOUT_GPU)
    with pytest.raises(ConfigError, match="runs on CPUExecutionProvider"):
        create_session(onnx_bytes, "cuda")  # listed, but the session fell back to CPU
    assert create_session(onnx_bytes, "cuda,cpu")[1] == CPU  # CPU allowed: the fallback is fine


def test_session_options(bundle_dir):
    lgbm = DirectionHorizons.load({h: bundle_dir / f"h{h}" for h in HORIZONS}, intra_op_threads=2, tree_runtime="onnx")
    options = lgbm._session.get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert lgbm.provider == CPU


def test_merged_graph_equals_separate_sessions(bundle_dir, real_rows):
    raw = [(bundle_dir / f"h{h}" / "model.onnx").read_bytes() for h in HORIZONS]
    merged, _ = create_session(merge_p_up(raw, "input", "probabilities"), "cpu")
    X = real_rows.astype(np.float32)
    (p_up,) = merged.run([P_UP_OUTPUT], {"input": X})
    separate = np.column_stack([create_session(b, "cpu")[0].run(["probabilities"], {"input": X})[0][:, 1] for b in raw])
    np.testing.assert_array_equal(p_up, separate)


def test_horizon_set_refuses_mislabelled_directories(bundle_dir):
    with pytest.raises(ConfigError, match="expected horizon 2"):
        DirectionHorizons.load({2: bundle_dir / "h1"})
