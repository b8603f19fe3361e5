"""Faults a worker meets in production, on the real broker: the broker unreachable at start and the
connection lost mid-stream; a model missing or corrupt at start; a corrupt model announced while serving.

How the broker outage is made honest: the embedded broker keeps everything in memory, so stopping it
would lose every topic, offset and changelog, which no production outage does (Kafka keeps its log).
Instead the broker stays up and a TCP proxy in front of it is cut: the broker advertises the proxy's
address, so every connection of the worker (group coordinator, fetches, produces, the model-events
reader) goes through the proxy and loses its socket when the proxy closes, exactly as with a network
partition or a broker restart that keeps its data. The worker is also started while nothing listens at
the broker address yet, to show it waits for the broker rather than exiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.signals import prediction_id
from streams.broker import _die_with_parent, free_port, tansu_binary, wait_for_broker
from core.settings import Settings
from streams.worker_process import WorkerProcess, settings_env
from tests.integration.test_candle_pipeline import collect, publish, real_candles
from tests.integration.test_hot_reload import publish_event, wait_for

pytestmark = pytest.mark.integration


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` drops every connection and refuses new ones
    until ``restore()``."""

    def __init__(self, target_port: int, port: int | None = None):
        self.target_port, self.port = target_port, port or free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()  # a reset, as a dropped network link gives
        self._writers.clear()

    def restore(self) -> None:
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def proxied_broker(tmp_path):
    """A Tansu broker of its own, reached only through a TcpProxy (starts cut: nothing listens yet)."""
    broker_port = free_port()
    proxy = TcpProxy(broker_port)
    url = f"tcp://127.0.0.1:{broker_port}"
    with open(tmp_path / "tansu.log", "ab") as log:
        process = subprocess.Popen([str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url",
                                    f"tcp://127.0.0.1:{proxy.port}", "--storage-engine", "memory://tansu/"],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    yield proxy
    proxy.close()
    process.terminate()
    process.wait(10)


def test_worker_waits_for_the_broker_and_rides_out_a_lost_connection(proxied_broker, trained_model, tmp_path):
    proxy = proxied_broker
    settings = Settings(broker={"bootstrap": f"127.0.0.1:{proxy.port}"}, app_id=f"cf-fault-{time.time_ns()}", topic_prefix="f",
                        partitions=4, timeframes=("5m",), model_dir=trained_model, data_dir=tmp_path / "state",
                        web={"port": free_port()}, signal_threshold=0.05)
    # 1. Started while nothing answers at the broker address: it waits (alive, not ready) instead of exiting.
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert worker.process.poll() is None, "the worker gave up on a broker that is not up yet"
            time.sleep(0.2)
        proxy.restore()
        wait_for_broker(settings.broker.bootstrap, 30)
        health = worker.wait_ready(90)
        assert health["assigned_partitions"] > 0
        version = health["model_version"]

        candles = real_candles(60)
        half = len(candles) // 2
        asyncio.run(publish(settings, candles[:half]))
        got = asyncio.run(collect(settings, lambda r: len(r["predictions"]) >= half, 60))
        assert len(got["predictions"]) == half

        # 2. Every connection drops for longer than the session timeout (6 s): the group evicts the worker.
        before = proxy.connections
        proxy.cut()
        cut_at = time.monotonic()
        while time.monotonic() - cut_at < 8.0:
            assert worker.process.poll() is None, "the worker died when the broker connection dropped"
            time.sleep(0.2)
        proxy.restore()
        asyncio.run(publish(settings, candles[half:]))
        expected = {prediction_id(c.symbol, c.timeframe, c.open_time, version) for c in candles}
        got = asyncio.run(collect(settings, lambda r: expected <= {p["id"] for p in r["predictions"]}, 120))
        resumed_in = time.monotonic() - cut_at - 8.0
        assert {p["id"] for p in got["predictions"]} == expected, "candles sent after the outage were not all scored"
        assert not got["dead-letters"], got["dead-letters"][:3]
        assert proxy.connections > before, "the worker did not reconnect"
        wait_for(lambda: (worker.health() or {}).get("ready"), 60)
        print(f"\nall candles after the 8 s outage scored {resumed_in:.1f} s after the link came back; "
              f"{len(got['predictions']) - len(expected)} duplicates")
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def start_worker_cli(settings: Settings) -> subprocess.Popen:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.Popen([sys.executable, "-m", "candleflow", "worker"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def corrupt_copy(model_dir: Path, target: Path, how: str) -> Path:
    """A copy of a real model directory, damaged in one way."""
    shutil.copytree(model_dir, target)
    onnx, meta = target / "model.onnx", target / "model.json"
    if how == "missing":
        shutil.rmtree(target)
        target.mkdir()
    elif how == "truncated onnx":
        onnx.write_bytes(onnx.read_bytes()[:200])
    elif how == "garbage onnx, matching checksum":  # gets past the checksum to ONNX Runtime itself
        onnx.write_bytes(os.urandom(300))
        metadata = json.loads(meta.read_text())
        metadata["onnx_sha256"] = hashlib.sha256(onnx.read_bytes()).hexdigest()
        meta.write_text(json.dumps(metadata))
    return target


DAMAGE = {  # how the model directory is damaged -> what the one-line error must say
    "missing": "no model here",
    "truncated onnx": "does not match model.json",
    "garbage onnx, matching checksum": "cannot load the model",
}


def test_missing_or_corrupt_model_at_start_is_one_clear_line(broker, trained_model, tmp_path):
    started = {}
    for i, how in enumerate(DAMAGE):  # all at once: each spends most of its start-up importing
        settings = Settings(broker={"bootstrap": broker.bootstrap}, model_dir=corrupt_copy(trained_model, tmp_path / f"model-{i}", how),
                            data_dir=tmp_path / f"state-{i}", web={"port": free_port()})
        started[how] = start_worker_cli(settings)
    for how, process in started.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 2, f"{how}: exit {process.returncode}\n{err[-2000:]}"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("candleflow: error: ") and DAMAGE[how] in lines[0], f"{how}: {err[-2000:]}"
        assert "Traceback" not in out + err


async def publish_raw_event(settings: Settings, value: bytes | None) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic("model-events"), value, key=b"candleflow")
    finally:
        await producer.stop()


def test_corrupt_model_announced_while_serving_keeps_the_previous_version(app_settings, worker_factory, trained_model, tmp_path):
    settings = app_settings()
    worker = worker_factory(settings)
    old = worker.get("/models")["active"]["version"]
    broken = corrupt_copy(trained_model, tmp_path / "broken", "garbage onnx, matching checksum")
    asyncio.run(publish_event(settings, {"version": "corrupt-v2", "action": "activate", "artifact_dir": str(broken)}))
    wait_for(lambda: worker.get("/models")["load_errors"], 60)
    models = worker.get("/models")
    assert models["active"]["version"] == old
    assert any("corrupt-v2" in e and "cannot load" in e for e in models["load_errors"]), models["load_errors"]

    candles = real_candles(40)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, lambda r: len(r["predictions"]) >= len(candles), 60))
    assert {p["model_version"] for p in got["predictions"]} == {old} and len(got["predictions"]) == len(candles)
    assert worker.get("/ready")["ready"] and worker.process.poll() is None

    worker.process.kill()  # a throwaway: skip the graceful stop
    worker.process.wait()


def test_malformed_model_events_are_skipped(app_settings, worker_factory, trained_model):
    """Not JSON, JSON that is not an object, and a tombstone (legitimate on a compacted topic) are each
    logged and skipped; the worker stays up and still follows the events after them."""
    settings = app_settings()
    worker = worker_factory(settings)
    old = worker.get("/models")["active"]["version"]
    for value in (b"\xff not json", b"[1, 2]", b'"activate"', None):
        asyncio.run(publish_raw_event(settings, value))
    asyncio.run(publish_event(settings, {"version": old, "action": "candidate", "artifact_dir": str(trained_model),
                                         "traffic_share": 0.5}))

    def followed() -> bool:
        if worker.process.poll() is not None:
            return True  # died: fail below instead of waiting
        models = safe_models(worker)
        return (models.get("candidate") or {}).get("version") == old

    wait_for(followed, 30)
    assert worker.process.poll() is None, "a malformed model event stopped the worker"
    assert worker.get("/models")["active"]["version"] == old
    worker.process.kill()
    worker.process.wait()


def safe_models(worker: WorkerProcess) -> dict:
    try:
        return worker.get("/models")
    except (OSError, ValueError):
        return {}
