"""The evaluation report on the real bundled candles, for a model and a bundle, and `candleflow evaluate --json`."""

from __future__ import annotations

import json
import math

import click
import pytest
from click.testing import CliRunner

from core.candle_files import read_candle_file
from core.errors import ConfigError
from training.commands import attach
from training.dataset import BUNDLED
from training.evaluate import EvalConfig, evaluate_files, evaluate_series
from training.scorer import load_scorer
from training.report import summary_text, write_report
from training.train import train_horizons_on_series

FILES = sorted(BUNDLED.glob("*.csv.gz"))


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.fixture(scope="module")
def report(trained_model):
    return evaluate_files(trained_model, FILES, EvalConfig(threshold=0.1))


def test_report_has_metrics_baselines_and_per_symbol_breakdown(report, trained_model):
    assert report["model"]["kind"] == "direction" and report["data"]["holdout"] == "validation"
    h = report["horizons"]["1"]
    assert set(h["classification"]) >= {"accuracy", "auc", "log_loss", "brier"}
    assert set(h["baselines"]) == {"always_up", "last_return_sign", "no_skill"}
    assert set(h["backtest"]) == {"model", "always_long", "last_return_sign", "no_skill"}
    assert set(h["per_symbol"]) == {"ETH-BTC", "LTC-BTC"}
    assert sum(s["rows"] for s in h["per_symbol"].values()) == h["rows"]
    assert sum(b["n"] for b in h["calibration"]["bins"]) == h["rows"]
    assert 0.3 < h["classification"]["accuracy"] < 0.8 and h["backtest"]["model"]["trades"] > 0
    assert all(isinstance(v, bool) for k, v in h["verdict"].items() if k != "lines")
    assert all(math.isfinite(x) for x in _numbers(report))
    json.dumps(report, allow_nan=False)  # strict JSON


def test_only_rows_after_the_fitted_range_are_evaluated(report, trained_model):
    meta = load_scorer(trained_model).metadata[0]
    for symbol, s in report["horizons"]["1"]["per_symbol"].items():
        assert s["from"] >= meta.training_range[symbol]["valid_from"]
    everything = evaluate_files(trained_model, FILES, EvalConfig(holdout="all"))
    assert everything["horizons"]["1"]["rows"] > report["horizons"]["1"]["rows"]
    assert any("optimistic" in n for n in everything["notes"])


def test_rows_the_model_was_trained_on_are_told_apart_per_symbol(report, trained_model):
    """Every row of the default report comes after the fitted range; with holdout 'all' and a pair the
    model never saw, each symbol says which of its rows were fitted, and the unseen ones are scored apart."""
    assert all(s["trained_rows"] == 0 and s["unseen_rows"] == s["rows"] for s in report["horizons"]["1"]["per_symbol"].values())
    assert not any("optimistic" in n for n in report["notes"])
    held_out = BUNDLED / "held-out" / "ETC-BTC_5m.csv.gz"
    everything = evaluate_files(trained_model, [*FILES, held_out], EvalConfig(holdout="all"))
    per_symbol = everything["horizons"]["1"]["per_symbol"]
    assert per_symbol["ETC-BTC"]["trained_rows"] == 0 and "unseen" not in per_symbol["ETC-BTC"]
    for symbol in ("ETH-BTC", "LTC-BTC"):
        s = per_symbol[symbol]
        assert s["trained_rows"] > 0 and s["unseen_rows"] > 0 and s["trained_rows"] + s["unseen_rows"] == s["rows"]
        assert s["unseen"]["rows"] == s["unseen_rows"] and 0 <= s["unseen"]["classification"]["accuracy"] <= 1
    note = next(n for n in everything["notes"] if "optimistic" in n)
    assert "ETH-BTC" in note and "ETC-BTC: never seen" in note
    text = summary_text(everything)
    assert "[unseen]" in text and "trained on," in text and "unseen accuracy" in text


def test_a_bundle_reports_every_horizon(tmp_path):
    eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:2000]
    train_horizons_on_series([eth[:1500]], tmp_path, horizons=(1, 3), progress=False, num_boost_round=5)
    rep = evaluate_series(load_scorer(tmp_path), [eth])
    assert rep["model"]["kind"] == "bundle" and sorted(rep["horizons"]) == ["1", "3"]
    assert rep["horizons"]["3"]["per_symbol"]["ETH-BTC"]["from"] >= "2018-01-14"
    assert "horizon 3" in summary_text(rep)
    written = write_report(rep, tmp_path / "out")
    assert [p.name for p in written][:2] == ["report.json", "report.txt"] and written[2].stat().st_size > 500


def test_a_bundle_with_a_sequence_member_is_evaluated_with_it(tmp_path):
    """Evaluation scores every member the worker serves: the Mamba member on the window the stream holds
    at each candle. Its figures equal the ensemble computed by hand from the LightGBM set and the ONNX
    window model (another implementation of the same weights than the step mode the bundle serves)."""
    import numpy as np

    from models.bundle import SEQUENCE_DIR
    from models.mamba import MambaModel
    from models.mamba.classifier import MambaConfig
    from training.dataset import build_datasets
    from training.mamba import train_mamba_on_series
    from training.mamba_windows import windows_at

    eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1400]
    train_horizons_on_series([eth[:1000]], tmp_path, horizons=(1, 2), progress=False, num_boost_round=5)
    lgbm_only = evaluate_series(load_scorer(tmp_path), [eth])
    train_mamba_on_series([eth[:1000]], tmp_path / SEQUENCE_DIR, progress=False,
                          config=MambaConfig(d_model=8, n_layers=1), epochs=1, threads=1)
    scorer = load_scorer(tmp_path)
    both = evaluate_series(scorer, [eth])
    assert scorer.reads_windows and sorted(both["model"]["members"]) == ["lgbm", "mamba"]
    assert both["horizons"]["2"]["rows"] == lgbm_only["horizons"]["2"]["rows"]
    assert both["horizons"]["1"]["classification"]["log_loss"] != lgbm_only["horizons"]["1"]["classification"]["log_loss"]

    ds = build_datasets([eth], (1, 2), None)[2]
    rows = np.flatnonzero(ds.meta.open_time >= ds.meta.open_time[-50])
    lgbm = load_scorer(tmp_path).model.members[0].model.predict_proba(ds.X[rows])[:, 1]
    mamba = MambaModel.load(tmp_path / SEQUENCE_DIR).predict_proba(windows_at(eth, ds.meta.open_time[rows]))[:, 1]
    from training.scorer import score_datasets
    served = score_datasets(scorer, [eth], {2: ds.take(rows)})[2]
    np.testing.assert_allclose(served, (lgbm + mamba) / 2, atol=1e-5)


def test_no_rows_after_training_is_a_config_error(trained_model):
    early = read_candle_file(FILES[0]).candles[:2000]  # inside the model's fitted range
    with pytest.raises(ConfigError, match="after the training range"):
        evaluate_series(load_scorer(trained_model), [early])


def test_cli_json_last_line_parses(trained_model, tmp_path):
    group = click.Group("candleflow")
    attach(group)
    result = CliRunner().invoke(group, ["evaluate", "--model", str(trained_model), "--data", str(FILES[0]),
                                        str(FILES[1]), "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["model"]["version"] == load_scorer(trained_model).version
    assert "accuracy" in result.output and (tmp_path / "report.json").exists()
    bad = CliRunner().invoke(group, ["evaluate", "--model", str(trained_model)])
    assert bad.exit_code == 2 and "--data" in bad.output
