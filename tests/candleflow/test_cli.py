"""Bad arguments and configuration end in one line on stderr and a non-zero exit."""

import subprocess
import sys

import pytest


def run_cli(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "candleflow", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("args, env, fragment", [
    (["produce", "/nonexistent.csv"], None, "does not exist"),
    (["demo", "--candles", "-5"], None, "--candles"),
    (["produce", "data/candles/ETH-BTC_5m.csv.gz", "--rate", "5", "--max"], None, "choose one"),
    (["worker"], {"CANDLEFLOW_PARTITIONS": "many"}, "CANDLEFLOW_PARTITIONS"),
    (["worker"], {"CANDLEFLOW_MODEL_DIR": "/nonexistent/model"}, "model"),
    (["nosuchcommand"], None, "No such command"),
])
def test_bad_input_gives_one_line_and_nonzero_exit(args, env, fragment):
    result = run_cli(*args, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("candleflow: error:") and fragment in lines[0]
