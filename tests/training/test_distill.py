"""Distillation on real candles: the student is served like any model, keeps the teacher's accuracy
to within a few points, and is faster. (Figures are measured, not asserted: speed belongs to benchmarks.)"""

import json
import subprocess
import sys

import numpy as np

from models.direction import DirectionModel
from tests.conftest import CANDLES
from training.distill import soft_targets


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
    assert report["version"].startswith("student-h1-") and report["n_valid"] > 1000
    assert 0.9 <= report["accuracy_preservation"] <= 1.1
    assert all(v > 0 for v in report["speed_up"].values())
    student = DirectionModel.load(out)
    p = student.predict_proba(np.zeros((4, len(student.feature_names))))
    assert student.version == report["version"] and ((0 < p) & (p < 1)).all()
