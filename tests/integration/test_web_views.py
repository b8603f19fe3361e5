"""Every web view of a running worker, on real candles; the dashboard in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from core.candle import Candle
from tests.conftest import ARTIFACTS
from tests.integration.test_candle_pipeline import all_out, collect, publish, real_candles

pytestmark = pytest.mark.integration


@pytest.fixture
def running(app_settings, worker_factory):
    settings = app_settings(web={"sse_max_clients": 2})
    worker = worker_factory(settings)
    candles = real_candles(80)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    assert got["signals"], "these candles should give some signals"
    return settings, worker, candles, got


def post(worker, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    url = f"http://{worker.settings.web.host}:{worker.settings.web.port}{path}"
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_ready_stats_and_metrics(running):
    settings, worker, candles, got = running
    assert worker.get("/ready")["ready"] is True
    stats = worker.get("/stats")
    assert stats["predictions"] == len(candles) and stats["signals"] == len(got["signals"])
    assert stats["end_to_end_ms"]["count"] == len(candles) and stats["end_to_end_ms"]["p50"] > 0
    assert stats["inference_ms"]["p99"] >= stats["inference_ms"]["p50"] > 0
    assert stats["consumer_lag"] == 0
    assert list(stats["providers"].values()) == ["CPUExecutionProvider"]  # where the model runs (no GPU here)
    # The latency budget's chain: this model has no student, every candle served by the full model.
    serving = stats["serving"]
    assert serving["served"] == {"full": len(candles), "student": 0} and serving["budget_ms"] == 250
    assert serving["estimate"][worker.get("/models")["active"]["version"]]["batches"] >= 1
    url = f"http://{settings.web.host}:{settings.web.port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    assert re.search(rf"^candleflow_predictions_total {len(candles)}\.0$", text, re.M)
    assert re.search(rf'^candleflow_served_candles_total{{by="full"}} {len(candles)}\.0$', text, re.M)
    assert 'candleflow_latency_ms{kind="end_to_end",quantile="p99"}' in text
    # The dashboard's series come a page at a time (the tables may hold any number of series).
    first, second = (worker.get(f"/dashboard/data?limit=1&offset={o}")["series"] for o in (0, 1))
    assert len(first) == len(second) == 1 and first[0]["symbol"] != second[0]["symbol"]
    assert worker.get("/dashboard/data?offset=2")["series"] == []
    assert "offset" in worker.get("/dashboard/data?limit=x", expect=400)["error"]


def test_signal_views_and_live_stream(running):
    settings, worker, candles, got = running
    symbol = got["signals"][-1]["symbol"]
    mine = [s for s in got["signals"] if s["symbol"] == symbol]
    recent = worker.get(f"/signals/{symbol}?limit=5")["signals"]
    assert [s["id"] for s in recent] == [s["id"] for s in sorted(mine, key=lambda s: s["open_time"], reverse=True)[:5]]
    assert worker.get(f"/signals/{symbol}?limit=x", expect=400)["error"]

    # Server-sent events: two clients connect (one shared consumer), a third is over the cap; then make a
    # new signal happen, and see it arrive at both.
    url = f"http://{settings.web.host}:{settings.web.port}/signals/stream"
    events: list[list[dict]] = [[], []]
    connected = [threading.Event(), threading.Event()]

    def listen(i: int) -> None:
        with urllib.request.urlopen(url, timeout=60) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith(": connected"):
                    connected[i].set()
                if line.startswith("data: "):
                    events[i].append(json.loads(line[6:]))
                    return

    listeners = [threading.Thread(target=listen, args=(i,), daemon=True) for i in range(2)]
    for listener in listeners:
        listener.start()
    assert all(c.wait(30) for c in connected)
    feed = worker.get("/stats")["signal_stream"]
    assert feed["clients"] == 2 and feed["consumer_running"] and feed["max_clients"] == 2
    with pytest.raises(urllib.error.HTTPError) as over:
        urllib.request.urlopen(url, timeout=10)
    assert over.value.code == 503 and "CANDLEFLOW_SSE_MAX_CLIENTS" in json.loads(over.value.read())["error"]
    last = candles[-1]
    # A big move makes a confident prediction likely; keep adding candles until one is a signal.
    deadline = time.monotonic() + 60
    t = last.open_time
    while not all(events) and time.monotonic() < deadline:
        t += 300_000
        price = last.close * (0.97 if (t // 300_000) % 2 else 1.03)
        asyncio.run(publish(settings, [Candle(last.symbol, "5m", t, price, price * 1.001, price * 0.95, price * 0.96, 50.0)]))
        listeners[0].join(timeout=1.0)
    assert all(events) and events[0][0]["symbol"] == last.symbol
    assert events[0][0]["id"] == events[1][0]["id"]
    # Both left: the shared consumer stops with the last of them.
    wait = time.monotonic() + 30
    while (f := worker.get("/stats")["signal_stream"])["clients"] and time.monotonic() < wait:
        time.sleep(0.2)
    assert f["clients"] == 0 and not f["consumer_running"]


def test_predict_scores_a_request_and_refuses_bad_ones(running):
    settings, worker, candles, _ = running
    series = [c.to_record() for c in candles if c.symbol == candles[0].symbol][:40]
    status, body = post(worker, "/predict", json.dumps({"candles": series}).encode())
    assert status == 200 and len(body["predictions"]) == 40
    assert body["predictions"][-1]["ready"] and body["model_version"] == worker.get("/health")["model_version"]

    status, body = post(worker, "/predict", b"not json")
    assert status == 400 and "not JSON" in body["error"]
    status, body = post(worker, "/predict", json.dumps({"candles": [dict(series[0], high=-1)]}).encode())
    assert status == 400 and body["error"].startswith("candle 0:")
    status, body = post(worker, "/predict", json.dumps({"candles": []}).encode())
    assert status == 400
    status, body = post(worker, "/predict", b'{"candles": [' + b"1," * 600_000 + b"1]}")
    assert status == 413 and "limit" in body["error"]


def test_predict_scores_off_the_event_loop_a_few_requests_at_a_time(running):
    from concurrent.futures import ThreadPoolExecutor

    from core.candle_files import read_candle_file
    from candleflow.web.predict import MAX_CONCURRENT
    from tests.conftest import CANDLES

    settings, worker, _, _ = running
    n = 3000  # under the 1 MiB body limit
    series = [c.to_record() for c in read_candle_file(CANDLES / "LTC-BTC_5m.csv.gz").candles[:n]]
    body = json.dumps({"candles": series}).encode()
    with ThreadPoolExecutor(2 * MAX_CONCURRENT) as pool:
        requests = [pool.submit(post, worker, "/predict", body) for _ in range(2 * MAX_CONCURRENT)]
        # While they are scored the worker's event loop still answers at once.
        started = time.monotonic()
        assert worker.get("/health")["ready"]
        answered_in = time.monotonic() - started
        results = [r.result(timeout=120) for r in requests]
    assert answered_in < 2.0, f"/health took {answered_in:.1f} s during the /predict requests"
    assert sum(status == 200 for status, _ in results) >= MAX_CONCURRENT
    for status, reply in results:
        assert (status == 200 and len(reply["predictions"]) == n) or \
            (status == 503 and "try again" in reply["error"]), (status, str(reply)[:200])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (make test installs it)")
def test_dashboard_renders_live_data_in_headless_chromium(running, tmp_path):
    settings, worker, _, _ = running
    deadline = time.monotonic() + 30
    data = worker.get("/dashboard/data")
    while not data["history"] and time.monotonic() < deadline:  # the first point is recorded a second after start
        time.sleep(0.2)
        data = worker.get("/dashboard/data")
    assert data["series"] and data["series"][0]["candles"] and data["history"]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    url = f"http://{settings.web.host}:{settings.web.port}/"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1000", "--virtual-time-budget=4000"]
    dom = subprocess.run(["chromium", *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert re.search(r'data-series="[1-9]', dom), "the page did not show live series"
    assert data["model"]["version"] in dom
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000


def test_admin_actions_need_the_token(app_settings, worker_factory):
    from core.settings import Secret

    def admin(worker, path, body, token=None):
        url = f"http://{worker.settings.web.host}:{worker.settings.web.port}{path}"
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    closed = worker_factory(app_settings())
    status, body = admin(closed, "/admin/retrain", {"reason": "x"}, token="anything")
    assert status == 403 and "CANDLEFLOW_ADMIN_TOKEN" in body["error"]

    settings = app_settings(web={"admin_token": Secret("s3cret-token")})
    worker = worker_factory(settings)
    assert admin(worker, "/admin/retrain", {"reason": "x"})[0] == 401
    assert admin(worker, "/admin/retrain", {"reason": "x"}, token="wrong")[0] == 401
    assert admin(worker, "/admin/promote", {}, token="s3cret-token")[0] == 400
    status, body = admin(worker, "/admin/retrain", {"reason": "drift seen by a person"}, token="s3cret-token")
    assert status == 202 and body["request"]["reasons"] == ["manual"]

    async def requests():
        from kafka_io.consumer import read_topic

        async for _, record, _ in read_topic(settings, [settings.topic("retrain-requests")]):
            return record

    assert asyncio.run(asyncio.wait_for(requests(), 30))["id"] == body["request"]["id"]
