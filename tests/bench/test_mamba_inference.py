"""The Mamba inference benchmark runs on a tiny model trained on the bundled candles (its figures: docs/mamba.md)."""

from __future__ import annotations

from bench.mamba_inference import measure
from models.mamba.classifier import MambaConfig
from core.candle_files import read_candle_file
from training.mamba import BUNDLED, train_mamba_on_series


def test_measure_gives_onnx_and_torch_figures_per_batch(tmp_path):
    candles = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:300]
    train_mamba_on_series([candles], tmp_path, progress=False, config=MambaConfig(d_model=8, n_layers=1),
                          epochs=1, threads=1)
    figures = measure(tmp_path, batches=(1, 4), rounds=1)
    assert sorted(figures) == ["onnx", "provider", "torch", "torch_backend", "torch_threads"]
    for runtime in ("onnx", "torch"):
        assert sorted(figures[runtime]) == ["1", "4"]
        for batch in ("1", "4"):
            assert figures[runtime][batch]["ms_per_call"] > 0 and figures[runtime][batch]["us_per_sequence"] > 0
