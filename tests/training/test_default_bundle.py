"""The default bundle (`candleflow train`, `make demo`): LightGBM per horizon and the Mamba member, the
member's weight chosen on rows neither member was fit on, and the table of that choice in bundle.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from candleflow.cli import cli
from core.candle_files import read_candle_file
from models.bundle import SEQUENCE_DIR
from models.loading import load_model
from models.mamba.classifier import MambaConfig
from training.dataset import BUNDLED, build_datasets
from training.default_bundle import CHOICE_MARGIN, SEQUENCE_WEIGHTS, train_default_bundle
from training.holdout import holdout_cuts, holdout_rows
from training.metrics import roc_auc
from training.scorer import load_scorer, score_datasets

TINY = MambaConfig(d_model=8, n_layers=1)


@pytest.fixture(scope="module")
def series():
    return [read_candle_file(BUNDLED / name).candles[:1500] for name in ("ETH-BTC_5m.csv.gz", "LTC-BTC_5m.csv.gz")]


@pytest.fixture(scope="module")
def trained(series, tmp_path_factory):
    out = tmp_path_factory.mktemp("default")
    info = train_default_bundle(series, out, horizons=(1, 3), progress=False, num_boost_round=10,
                                mamba_config=TINY, mamba_epochs=2)
    return out, info


def test_the_chosen_weight_is_the_best_candidate_and_is_what_the_bundle_serves(series, trained):
    out, info = trained
    config = json.loads((out / "bundle.json").read_text())
    table = config["selection"]["candidates"]
    assert sorted(table) == sorted(map(str, SEQUENCE_WEIGHTS)) and config["selection"]["chosen"] == info.sequence_weight
    best = max(t["mean_auc"] for t in table.values())
    assert table[str(info.sequence_weight)]["mean_auc"] >= best - CHOICE_MARGIN
    assert all(t["mean_auc"] < best - CHOICE_MARGIN for w, t in table.items() if float(w) < info.sequence_weight)
    assert config["weights"] == {"lgbm": 1.0, "mamba": info.sequence_weight}
    served = load_model(out)
    assert [m.name for m in served.members] == ["lgbm", "mamba"] and served.members[1].weight == info.sequence_weight

    # The table's figure for the chosen weight is the served ensemble's AUC on the same rows, recomputed.
    scorer = load_scorer(out)
    datasets = build_datasets(series, (1, 3), None)
    cuts, default = holdout_cuts(scorer, "validation")
    rows = {h: ds.take(holdout_rows(ds, cuts, default)) for h, ds in datasets.items()}
    p = score_datasets(scorer, series, rows)
    for h in (1, 3):
        assert len(rows[h]) == config["selection"]["rows"][f"h{h}"]
        assert roc_auc(rows[h].y, p[h]) == pytest.approx(table[str(info.sequence_weight)]["auc"][f"h{h}"], abs=1e-6)
    # The bundle's metrics (what live accuracy is compared with) are the ensemble's on those rows.
    assert config["metrics"]["h1"]["auc"] == pytest.approx(roc_auc(rows[1].y, p[1]), abs=1e-4)
    assert np.isfinite(config["metrics"]["h3"]["accuracy"])


def test_without_the_sequence_member_the_lightgbm_bundle_is_left_as_trained(series, tmp_path):
    info = train_default_bundle(series, tmp_path, horizons=(1,), progress=False, num_boost_round=5,
                                with_sequence=False)
    assert info.sequence is None and not (tmp_path / SEQUENCE_DIR).exists()
    assert "selection" not in json.loads((tmp_path / "bundle.json").read_text()) or \
        not json.loads((tmp_path / "bundle.json").read_text())["selection"]


def test_cli_train_ships_the_sequence_member_unless_told_not_to(tmp_path):
    short = tmp_path / "ETH-BTC_5m.csv"
    lines = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:900]
    short.write_text("ts,open,high,low,close,volume\n" + "".join(
        f"{c.open_time},{c.open},{c.high},{c.low},{c.close},{c.volume}\n" for c in lines))
    runner = CliRunner()
    with_member = runner.invoke(cli, ["train", "--data", str(short), "--out", str(tmp_path / "a"), "--horizons", "1",
                                      "--mamba-epochs", "1"])
    assert with_member.exit_code == 0, with_member.output
    assert (tmp_path / "a" / SEQUENCE_DIR / "model.json").exists()
    assert json.loads(with_member.output[with_member.output.index("{"):])["sequence_weight"] in SEQUENCE_WEIGHTS
    without = runner.invoke(cli, ["train", "--data", str(short), "--out", str(tmp_path / "b"), "--no-mamba"])
    assert without.exit_code == 0 and not (tmp_path / "b" / SEQUENCE_DIR).exists()
    one = runner.invoke(cli, ["train", "--data", str(short), "--out", str(tmp_path / "c"), "--horizons", "1", "--no-mamba"])
    assert one.exit_code == 0 and (tmp_path / "c" / "model.json").exists()
