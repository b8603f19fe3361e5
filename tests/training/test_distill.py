"""Distillation on real candles: the teacher is the whole model (a bundle's sequence member included, on its
windows), the student serves every horizon the teacher serves, is written where a worker serving the teacher
finds it, and the report says the accuracy it keeps per horizon and its speed-up per row as served.
(Figures are measured, not asserted: speed belongs to benchmarks.)"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from models.loading import DISTILL_FILE, load_model, load_student
from tests.conftest import CANDLES, tiny_sequence_bundle
from training.dataset import build_datasets, time_split
from training.distill import distill_series, soft_targets
from training.scorer import load_scorer, score_datasets
from training.train import train_horizons_on_series


def test_soft_targets_blend_hard_labels_and_softened_teacher():
    t = soft_targets(np.array([0.99, 0.01, 0.5]), np.array([1, 1, 0]), temperature=1.0, alpha=0.0)
    assert np.allclose(t, [0.99, 0.01, 0.5])
    assert np.allclose(soft_targets(np.array([0.8]), np.array([0]), temperature=3.0, alpha=1.0), [0.0])
    softer = soft_targets(np.array([0.9]), np.array([0]), temperature=4.0, alpha=0.0)[0]
    assert 0.5 < softer < 0.9  # a temperature above 1 pulls probabilities towards 0.5


def test_distill_command_writes_a_servable_student(trained_model, tmp_path):
    out = tmp_path / "student"
    files = [str(f) for f in sorted(CANDLES.glob("*.csv.gz"))]
    result = subprocess.run([sys.executable, "-m", "candleflow", "distill", "--teacher", str(trained_model),
                             *sum((["--data", f] for f in files), []), "--out", str(out), "--json"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["horizons"] == [1] and report["n_valid"]["h1"] > 1000
    assert 0.9 <= report["accuracy_preservation"] <= 1.1
    assert set(report["speed_up"]) == {"batch_1", "batch_1000"} and all(v > 0 for v in report["speed_up"].values())
    student = load_model(out)
    p = student.score(np.zeros((4, len(student.feature_names)))).prob_up
    assert student.version == report["version"] and student.horizons == (1,) and ((0 < p) & (p < 1)).all()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny bundle: LightGBM for every horizon (5 rounds) and a Mamba member, on ~900 real candles."""
    out = tmp_path_factory.mktemp("distill") / "bundle"
    return out, tiny_sequence_bundle(out)


@pytest.fixture(scope="module")
def distilled(bundle):
    bundle_dir, candles = bundle
    return distill_series(bundle_dir, [candles], num_boost_round=5, timing_s=0.05, progress=False)


def test_a_bundle_is_distilled_per_horizon_from_every_member_into_its_student_dir(bundle, distilled):
    bundle_dir, candles = bundle
    report = distilled
    # The teacher's accuracy is that of every member together, the sequence member on its windows.
    assert report.members == ["lgbm", "mamba"] and report.horizons == [1, 2, 3, 4, 5]
    scorer = load_scorer(bundle_dir)
    datasets = build_datasets([candles], scorer.horizons, 0.0)
    teacher_p = score_datasets(scorer, [candles], datasets)
    for h in scorer.horizons:
        valid_rows = len(datasets[h]) - report.n_valid[f"h{h}"]
        _, valid = time_split(datasets[h])
        expected = ((teacher_p[h][valid_rows:] >= 0.5) == valid.y).mean()
        assert report.teacher_accuracy[f"h{h}"] == pytest.approx(expected, abs=1e-4)
        assert report.accuracy_kept[f"h{h}"] == pytest.approx(
            report.student_accuracy[f"h{h}"] / report.teacher_accuracy[f"h{h}"], abs=1e-3)
    assert set(report.teacher_us_per_row) == set(report.student_us_per_row) == {"batch_1", "batch_1000"}
    assert all(v > 0 for v in report.speed_up.values()) and set(report.goals_met) == {"accuracy_kept", "speed_up"}
    # Written into the bundle, where the worker's loader finds it: a LightGBM bundle of every horizon.
    student_dir = bundle_dir / "student"
    assert json.loads((student_dir / DISTILL_FILE).read_text())["version"] == report.version
    served = load_model(bundle_dir)
    assert served.student is not None and served.student.version == report.version
    assert served.student.horizons == served.horizons and [m.name for m in served.student.members] == ["lgbm"]
    assert served.student.distillation["teacher_version"] == served.version
    # Its trees run compiled on CPU, like the teacher's (each horizon has its model.txt).
    assert served.student.members[0].model.provider == served.members[0].model.provider == "lleaves-cpu"
    # Distilled again: replaced whole, nothing left beside it.
    again = distill_series(bundle_dir, [candles], num_boost_round=3, timing_s=0.05, progress=False)
    assert again.version != report.version and load_model(bundle_dir).student.version == again.version
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["bundle.json", "h1", "h2", "h3", "h4", "h5", "mamba",
                                                           "reference.npy", "student"]


def test_a_student_of_another_teacher_is_not_served(bundle, distilled, tmp_path):
    bundle_dir, candles = bundle
    other = tmp_path / "other"
    train_horizons_on_series([candles], other, progress=False, num_boost_round=4)
    shutil.copytree(distilled.out_dir, other / "student")  # bundle_dir's student, put beside another model
    assert load_student(load_model(other, student=False), other) is None
    assert load_model(other).student is None
