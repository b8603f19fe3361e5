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

    result = subprocess.run([sys.executable, "-m", "candleflow", "demo", "--candles", "300", "--json"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, **env_model}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["complete"] and summary["candles"] == 302
    assert summary["predictions"] == summary["valid_candles"] == 300
    assert summary["dead_letters"] == 2
    assert sum(summary["dead_letter_reasons"].values()) == 2 and any(r.startswith("decode: ") for r in summary["dead_letter_reasons"])
    assert sum(summary["signals_by_direction"].values()) == summary["signals"] and summary["members"]
    assert "dead letters        2\n    1 x " in result.stdout
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

    process = subprocess.Popen([sys.executable, "-m", "candleflow", "demo", "--candles", "5000", "--rate", "100"],
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
    own; the retrain on the topic is a candidate, the shadow A/B test promotes it, the worker serves it;
    the summary says when, from where, and what each step decided."""
    import os

    result = subprocess.run([sys.executable, "-m", "candleflow", "demo", "--regime-change", "--rate", "2000", "--json"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**os.environ, "CANDLEFLOW_MODEL_DIR": str(default_bundle)})
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    regime = summary["regime_change"]
    assert summary["complete"] and regime["symbol"] == "ETC-BTC" and regime["changed_at"] == regime["candles"] // 2
    assert 0 <= regime["request"]["after_candles"] <= 1500 and abs(regime["request"]["since_from_change"]) <= 200
    assert regime["retrain"]["decision"] == "candidate" and regime["retrain"]["version"]
    # With the registry (PostgreSQL on 127.0.0.1 here): the shadow A/B test decides, the worker serves the result.
    promotion = regime["promotion"]
    assert promotion["decision"] == "promote" and promotion["serving"] == regime["retrain"]["version"], promotion
    assert promotion["worker_serves_it"] and promotion["accuracy_candidate"] > promotion["accuracy_active"]
    assert "Regime change (the learning loop)" in result.stdout and "retrain request" in result.stdout
    assert "shadow A/B test     promote" in result.stdout


def test_make_demo_in_a_terminal_stays_live_until_ctrl_c(trained_model, tmp_path):
    """`make demo` in a terminal: after the summary the broker and worker stay up and the candles go on
    (later open times each loop), the dashboard answers, and Ctrl-C typed at the terminal (SIGINT to the
    whole foreground process group, the worker and broker included) stops everything, without a traceback."""
    import fcntl
    import os
    import pty
    import select
    import shutil
    import termios
    import urllib.request

    from tests.conftest import ARTIFACTS

    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # as a shell starts a job: its own session, the pty its terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen([sys.executable, "-m", "candleflow", "demo", "--candles", "300", "--live-rate", "50"],
                               stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, preexec_fn=controlling_terminal,
                               env={**os.environ, "CANDLEFLOW_MODEL_DIR": str(trained_model), "COLUMNS": "200"})
    os.close(slave)
    output = b""

    def read_until(pattern: str, timeout_s: float) -> re.Match:
        nonlocal output
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, output.decode(errors="replace"))
            if found:
                return found
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    output += os.read(master, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
        raise AssertionError(f"no {pattern!r} in the demo's output: {output.decode(errors='replace')[-3000:]}")

    def get(url: str):
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = reply.read()
            return json.loads(body) if reply.headers.get_content_type() == "application/json" else body.decode()

    try:
        read_until(r"Candleflow demo summary[\s\S]*elapsed", 300)
        web = read_until(r"dashboard\s+(http://127\.0\.0\.1:(\d+))/", 30)
        url, web_port = web.group(1), int(web.group(2))
        broker_port = int(read_until(r"embedded broker at 127\.0\.0\.1:(\d+)", 5).group(1))
        assert "Candleflow" in get(url + "/")
        deadline = time.monotonic() + 60
        while get(url + "/stats")["candles"] <= 300 and time.monotonic() < deadline:
            time.sleep(0.5)  # the loop goes on after the 300 candles of the summary
        stats = get(url + "/stats")
        assert stats["candles"] > 300 and stats["dead_letters"] == 2, stats
        data = get(url + "/dashboard/data")
        assert data["series"] and data["series"][0]["candles"]
        if shutil.which("chromium"):  # the README's picture of what `make demo` shows
            ARTIFACTS.mkdir(exist_ok=True)
            subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1000",
                            "--virtual-time-budget=4000", f"--screenshot={ARTIFACTS / 'demo-dashboard.png'}", url + "/"],
                           capture_output=True, timeout=120, check=True)
        os.write(master, b"\x03")  # Ctrl-C, as typed
        read_until(r"demo stopped", 90)  # reading on: a process writing to a full terminal would block
        code = process.wait(timeout=30)
        text = output.decode(errors="replace")
        assert code == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        os.close(master)
    for port in (web_port, broker_port):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(ProcessLookupError):  # nothing of the demo's process group is left
        os.killpg(process.pid, 0)
