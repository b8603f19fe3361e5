"""The README's demo command, end to end: real candles through a real broker and worker."""

import json
import re
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_to_completion_and_leaves_nothing_behind(trained_model, tmp_path):
    env_model = {"CANDLEFLOW_MODEL_DIR": str(trained_model)}
    import os

    result = subprocess.run([sys.executable, "-m", "streams.cli", "demo", "--candles", "300", "--json"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, **env_model}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["complete"] and summary["candles"] == 302
    assert summary["predictions"] == summary["valid_candles"] == 300
    assert summary["dead_letters"] == 2
    assert summary["signals"] >= 0 and (summary["latency_ms_p50"] is None) == (summary["signals"] == 0)
    for key in ("latency_ms_p50", "latency_ms_p99"):
        assert key in summary
    # Neither the demo's broker nor its worker survives it: their ports no longer answer.
    broker = re.search(r"embedded broker at 127\.0\.0\.1:(\d+)", result.stderr)
    worker = re.search(r"worker ready at http://127\.0\.0\.1:(\d+)", result.stderr)
    assert broker and worker, result.stderr[-2000:]
    for port in (broker.group(1), worker.group(1)):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()


def test_interrupted_demo_stops_its_broker_and_worker(trained_model, tmp_path):
    import os
    import signal

    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "demo", "--candles", "5000", "--rate", "100"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env={**os.environ, "CANDLEFLOW_MODEL_DIR": str(trained_model)})
    ports = []
    try:
        for line in process.stderr:  # wait for the condition, not for a fixed time
            found = re.search(r"(?:embedded broker at |worker ready at http://)127\.0\.0\.1:(\d+)", line)
            if found:
                ports.append(int(found.group(1)))
            if len(ports) == 2:
                break
        assert len(ports) == 2, "the demo did not get as far as a ready worker"
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = process.wait(timeout=60)
        assert code != 0, f"exit {code} {time.monotonic() - sent:.1f} s after SIGINT; stderr: {process.stderr.read()[-3000:]}"
    finally:
        process.kill()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_demo_regime_change_reports_the_learning_loop(default_bundle, tmp_path):
    """`candleflow demo --regime-change`: the worker serving the default bundle asks for a retrain on its
    own, and the summary says when, from where, and what the retrain on the topic gives."""
    import os

    result = subprocess.run([sys.executable, "-m", "streams.cli", "demo", "--regime-change", "--rate", "2000", "--json"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "CANDLEFLOW_MODEL_DIR": str(default_bundle)})
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    regime = summary["regime_change"]
    assert summary["complete"] and regime["symbol"] == "ETC-BTC" and regime["changed_at"] == regime["candles"] // 2
    assert 0 <= regime["request"]["after_candles"] <= 1500 and abs(regime["request"]["since_from_change"]) <= 200
    assert regime["retrain"]["decision"] in ("candidate", "rejected", "unchanged") and regime["retrain"]["version"]
    assert "Regime change (the learning loop)" in result.stdout and "retrain request" in result.stdout
