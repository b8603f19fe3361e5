"""The systems under test of ``bench.pipeline``: each row's process and topics (:func:`start_row`), the records
it produced, and its topics deleted when it is done."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._pipeline_config import PARTITIONS, REPO

__all__ = ["Row", "create_topics", "delete_topics", "produced_records", "start_row"]


@dataclass
class Row:
    """One system under test: its process, its topics, and how its outputs are read."""

    name: str
    batch_input: bool  # CandleBatch messages instead of one Candle per message
    source: str
    outputs: str  # the topic with one output per candle
    signals: str | None
    decode_outputs: bool  # latency from the record's candle_produced_at (else the output's Kafka timestamp)
    process: subprocess.Popen | None = None
    worker: Any = None
    pid: int | None = None
    cleanup: list = field(default_factory=list)

    def alive(self) -> bool:
        if self.worker is not None:
            return self.worker.process is not None and self.worker.process.poll() is None
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)


def create_topics(broker: str, specs: list[tuple[str, dict[str, str]]]) -> None:
    from core.topics import TopicSpec, ensure_topics

    ensure_topics(broker, [TopicSpec(name, PARTITIONS, cfg) for name, cfg in specs])


def _child(args: list[str], log_path: Path) -> subprocess.Popen:
    from streams.broker import _die_with_parent

    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def start_row(name: str, broker: str, run_id: str, workdir: Path, model_dir: Path, threshold: float,
              worker_env: dict[str, str] | None = None) -> Row:
    """Start one row's process; ``worker_env``: CANDLEFLOW_* settings for the Candleflow rows (Quix takes their
    client settings too)."""
    from core.settings import Settings
    from streams.broker import free_port

    prefix = f"bp{run_id}-{name}"
    state = workdir / f"state-{name}"
    log_path = workdir / f"{name}.log"
    if name in ("raw", "faust"):
        row = Row(name, False, f"{prefix}.candles.5m", f"{prefix}.out", None, decode_outputs=False)
        create_topics(broker, [(row.source, {}), (row.outputs, {})])
        cfg = {"broker": broker, "source": row.source, "sink": row.outputs, "app_id": f"{prefix}-app",
               "partitions": PARTITIONS, "web_port": free_port(), "data_dir": str(state)}
        row.process = _child(["-m", "bench._pipeline_procs", name, json.dumps(cfg)], log_path)
    elif name == "quix":
        row = Row(name, False, f"{prefix}.candles.5m", f"{prefix}.predictions", f"{prefix}.signals", decode_outputs=True)
        # Quix's stateful mode reads retention.ms from the source topic's config (docs/platform.md).
        create_topics(broker, [(row.source, {"retention.ms": str(7 * 24 * 3600 * 1000)}), (row.outputs, {}), (row.signals, {})])
        client = Settings.from_env(worker_env or {}).broker  # the Candleflow rows' fetch wait and linger
        cfg = {"broker": broker, "group": f"{prefix}-app", "source": row.source, "predictions": row.outputs,
               "signals": row.signals, "model_dir": str(model_dir), "threshold": threshold, "state_dir": str(state),
               "fetch_max_wait_ms": client.fetch_max_wait_ms, "linger_ms": round(client.producer_linger_s * 1000)}
        row.process = _child(["-m", "bench.quix_baseline", json.dumps(cfg)], log_path)
    else:
        from core.topics import ensure_topics, topic_specs
        from streams.worker_process import WorkerProcess

        settings = Settings.from_env(worker_env or {}, broker={"bootstrap": broker}, app_id=f"{prefix}-app", topic_prefix=prefix,
                                     partitions=PARTITIONS, timeframes=("5m",), model_dir=model_dir, data_dir=state,
                                     web={"port": free_port()},
                                     signal_threshold=threshold)
        ensure_topics(broker, topic_specs(settings))
        row = Row(name, name == "candleflow-batch", settings.candle_topic("5m"), settings.topic("predictions"),
                  settings.topic("signals"), decode_outputs=True)
        row.worker = WorkerProcess(settings, log_path).start()
    row.pid = row.worker.process.pid if row.worker is not None else row.process.pid
    row.cleanup.append(state)
    return row


def produced_records(broker: str, run_id: str, name: str, source: str) -> int:
    """Every record the row's processor has produced so far, changelogs and internal topics included
    (every topic holding the row's prefix, but its input)."""
    import asyncio

    from bench.broker_bytes import topic_bytes

    prefix = f"bp{run_id}-{name}"
    counts = asyncio.run(topic_bytes(broker, idle_s=1.5, match=lambda t: prefix in t and t != source))
    return sum(n for n, _ in counts.values())


def delete_topics(broker: str, prefix: str) -> None:
    """Delete every topic of a row (its own, Faust's and Quix's internal ones all contain its prefix):
    Tansu keeps everything in memory and slows down as it fills, so each row starts on an empty broker."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": broker, "log_level": 0})
    names = [t for t in admin.list_topics(timeout=10).topics if prefix in t]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            try:
                future.result(30)
            except Exception:  # best effort: the broker is ours and goes away at the end anyway
                pass
