"""The benchmarks that run a trained model refuse a missing one in one line, before starting anything."""

from __future__ import annotations

import pytest

from bench import hand_session, hostile, recovery
from bench._model_argument import missing_model


@pytest.mark.parametrize("bench", [hand_session, hostile, recovery])
def test_a_missing_model_is_one_line_and_exit_2(bench, tmp_path, capsys):
    missing = tmp_path / "no-model"
    assert bench.main(["--model", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == missing_model(missing) and "\n" not in err and str(missing) in err


def test_a_model_that_is_there_passes(tmp_path):
    assert missing_model(tmp_path) is None
