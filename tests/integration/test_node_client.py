"""A client in another language, written only from the README: Node.js with kafkajs and
@kafkajs/confluent-schema-registry (tests/foreign/node/client.mjs), pointed at the broker and a worker's URL,
publishes candles the worker scores and decodes every prediction, signal and dead letter."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_candle_pipeline import real_candles

pytestmark = pytest.mark.integration

CLIENT = Path(__file__).resolve().parents[1] / "foreign" / "node"


@pytest.fixture(scope="module")
def node_client() -> Path:
    if shutil.which("node") is None:
        pytest.fail("Node.js is needed for the foreign-client test (Debian: apt-get install nodejs npm)")
    if not (CLIENT / "node_modules" / "kafkajs").is_dir():  # `make test` installs them; a bare pytest too
        subprocess.run(["npm", "ci", "--prefix", str(CLIENT), "--no-audit", "--no-fund", "--loglevel=error"], check=True)
    return CLIENT / "client.mjs"


def test_a_nodejs_client_publishes_and_decodes_with_only_the_workers_url(app_settings, worker_factory, node_client, tmp_path):
    settings = app_settings()
    worker_factory(settings)
    candles = real_candles(40)
    last = candles[-1]
    bad = dict(last.to_record(), open_time=last.open_time + 300_000, high=last.low * 0.5)  # high below low
    lines = [json.dumps(c.to_record()) for c in candles] + [json.dumps(bad)]
    (tmp_path / "candles.jsonl").write_text("\n".join(lines) + "\n")

    run = subprocess.run(
        ["node", str(node_client), "--broker", settings.broker.bootstrap,
         "--registry", f"http://{settings.web.host}:{settings.web.port}", "--prefix", settings.topic(""),
         "--candles", str(tmp_path / "candles.jsonl"), "--expect-predictions", str(len(candles)),
         "--expect-dead-letters", "1", "--signal-threshold", str(settings.signal_threshold), "--timeout-s", "120"],
        capture_output=True, text=True, timeout=180)
    out = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert run.returncode == 0 and out and out[-1]["done"], (run.stdout[-2000:], run.stderr[-2000:])
    records = out[:-1]
    predictions = [r["record"] for r in records if r["topic"] == "predictions"]
    signals = [r["record"] for r in records if r["topic"] == "signals"]
    dead = [r["record"] for r in records if r["topic"] == "dead-letters"]
    assert sorted((p["symbol"], p["open_time"]) for p in predictions) == sorted((c.symbol, c.open_time) for c in candles)
    assert all(p["model_version"] and len(p["horizons"]) >= 1 for p in predictions)
    implied = {p["id"] for p in predictions if p["ready"] and p["confidence"] >= settings.signal_threshold}
    assert {s["prediction_id"] for s in signals} == implied and all(s["direction"] in ("UP", "DOWN") for s in signals)
    assert len(dead) == 1 and "high" in dead[0]["reason"]
