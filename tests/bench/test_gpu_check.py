"""``python -m bench.gpu_check`` on a tiny trained bundle: the CPU column, and what it says without CUDA.

On a CUDA machine the same run also fills the GPU column (checked there by ``make gpu-check``); here the CPU
column alone must be complete, the GPU column reported as not run, and the exit status 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.candle_files import read_candle_file
from models.mamba.classifier import MambaConfig
from training.mamba import train_mamba_on_series
from training.train import BUNDLED, train_horizons_on_series

ROOT = Path(__file__).resolve().parents[2]
NO_CUDA = not torch.cuda.is_available()
SIZES = (100, 1000)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    """LightGBM (2 horizons, 5 rounds) and a tiny Mamba member (d_model 8, 1 layer, 1 epoch), ~900 real candles."""
    out = tmp_path_factory.mktemp("gpu-check-bundle")
    eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:900]
    train_horizons_on_series([eth], out, horizons=(1, 2), progress=False, num_boost_round=5)
    train_mamba_on_series([eth], out / "mamba", progress=False, config=MambaConfig(d_model=8, n_layers=1),
                          epochs=1, threads=1)
    return out


def _check(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench.gpu_check", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cpu_run(bundle_dir):
    return _check("--model-dir", str(bundle_dir), "--sizes", ",".join(map(str, SIZES)), "--rounds", "1",
                  "--candles", "400", "--json")


def test_the_cpu_column_is_complete_and_its_parity_passes(cpu_run, bundle_dir):
    assert cpu_run.returncode == 0, cpu_run.stderr[-3000:]
    table, report = cpu_run.stdout.rsplit("\n", 2)[0], json.loads(cpu_run.stdout.strip().splitlines()[-1])
    cpu = report["columns"]["cpu"]
    assert cpu["in_use"]["lgbm"] == cpu["in_use"]["mamba_onnx"] == "CPUExecutionProvider"
    assert cpu["in_use"]["mamba_torch"].startswith("PyTorch block, cpu")
    assert cpu["in_use"]["mamba_step"].startswith("PyTorch block step, cpu")
    for member in ("lgbm", "mamba_onnx", "mamba_torch", "mamba_step"):
        assert sorted(cpu["ms_per_call"][member], key=int) == [str(n) for n in SIZES]
        assert all(ms > 0 for ms in cpu["ms_per_call"][member].values())
    by_name = {c["check"]: c for c in report["parity"]}
    for name in ("Mamba window ONNX vs PyTorch, CPU", "Mamba step vs window, CPU"):
        assert by_name[name]["result"] == "PASS" and by_name[name]["max_abs_diff"] <= 1e-4
    assert {"LightGBM h1, GPU vs CPU", "LightGBM h2, GPU vs CPU", "Mamba step, GPU vs CPU"} <= set(by_name)
    assert f"bundle {bundle_dir}: LightGBM and Mamba members as found" in table  # nothing trained for the check
    assert "LightGBM, ONNX Runtime, 1,000 symbols" in table and "served: lgbm on lleaves-cpu" in table  # compiled on CPU
    assert "[gpu-check" in cpu_run.stderr  # progress lines


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA: the GPU column runs")
def test_without_cuda_the_gpu_column_is_reported_as_not_run(cpu_run):
    report = json.loads(cpu_run.stdout.strip().splitlines()[-1])
    assert "no CUDA device: GPU column not run" in cpu_run.stdout
    assert list(report["columns"]) == ["cpu"] and report["cuda"] is False and report["result"] == "PASS"
    gpu_checks = [c for c in report["parity"] if "GPU vs CPU" in c["check"]]
    assert gpu_checks and all(c["result"] == "not run" and c["why"] == "no CUDA device" for c in gpu_checks)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA: --require-gpu finds it")
def test_require_gpu_without_cuda_exits_non_zero_with_one_line(bundle_dir):
    run = _check("--model-dir", str(bundle_dir), "--require-gpu")
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: --require-gpu: no CUDA device"), run.stderr
