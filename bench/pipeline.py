"""Pipeline throughput and latency, side by side, in one run on one embedded broker (issue 10).

Run: ``python -m bench.pipeline [--json] [--quick] [--profile]`` (``candleflow bench pipeline``).

Rows, each a process of its own fed the same real candles:

- ``raw``: an aiokafka consume -> produce pass-through (``bench._pipeline_procs``);
- ``faust``: a plain Faust agent forwarding each event with ``await topic.send()``, Candleflow's
  client settings;
- ``quix``: Quix Streams doing Candleflow's per-candle work: decode + validate, ``FeatureState``,
  the same ONNX model, Prediction/Signal records, per-key RocksDB state with changelog
  (``bench.quix_baseline``);
- ``candleflow``: the full Candleflow worker (``candleflow worker`` via ``WorkerProcess``: candle
  agent, outcome agents, web views; no sinks) fed one Candle per message;
- ``candleflow-batch``: the same fed CandleBatch messages (one per partition per candle close).

Regimes, in this order, each done when every output is counted (no sleeps):

- warm-up (not reported): ``WARMUP_STEPS`` closes of every symbol, so features are ready (a burst
  closes 2,000 warm series, as a 2,000-symbol universe does every interval);
- ``steady`` (after the bursts, which give a first rate estimate for its time-out): 1,000 candles/s for a while, round-robin over the live symbols (10 ms ticks; in batch
  mode a tick's candles go out as one CandleBatch per partition);
- ``burst``: 2,000 symbols close the same candle at once (2,000 messages, or 4 CandleBatch
  messages); reported: time from the last candle's produce timestamp to the last output readable;
- ``max``: as fast as the feeder can write; size chosen from the burst so it lasts ~``MAX_TARGET_S``.

Latency = time the bench's reader got the output - Kafka timestamp of the input message (for the
pass-throughs the output carries the input's timestamp; for Quix and Candleflow the Prediction's
``candle_produced_at``). Sustained rate = outputs/s between the 10th and 90th percentile of the
output stream at max rate. Peak RSS = VmHWM of the processing process over its whole run; CPU time
per candle = its user+system CPU over the max regime / candles.

The feeder and reader use librdkafka (confluent-kafka) and pre-encoded messages, so the bench's own
Python work stays off the measured path. ``--profile`` then runs the two Candleflow rows at max rate
again under py-spy (all threads) and prints where the worker's CPU goes per candle.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._pipeline_data import FastCandleEncoder, Universe, partition_of
from bench._pipeline_io import Feeder, Reader, proc_cpu_s, proc_peak_rss_mb
from schemas import unbatch

__all__ = ["main", "run"]

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4
LIVE_SYMBOLS = 200
BURST_SYMBOLS = 2000
WARMUP_STEPS = 40  # > READY_AFTER (34): every symbol's features are ready when timing starts
STEADY_RATE = 1000.0
TICK_S = 0.010
ROWS = ("raw", "faust", "quix", "candleflow", "candleflow-batch", "compute")
LABELS = {"raw": "(a) raw aiokafka pass-through", "faust": "(b) plain Faust agent forwarder",
          "quix": "(c) Quix Streams, same features + ONNX", "candleflow": "(d) Candleflow, single-candle messages",
          "candleflow-batch": "(e) Candleflow, CandleBatch messages", "compute": "(f) the batch step in-process, no Kafka"}
# Issue 13's goals; steady latencies are over the bench floor (feeder -> broker -> reader without a processor).
GOALS = {"steady_p50_over_floor_ms": 10.0, "steady_p99_over_floor_ms": 50.0, "burst_last_ms": 250.0, "rss_mb": 500.0,
         "batch_vs_faust": 2.0, "batch_vs_quix": 3.0, "single_vs_faust": 1.0, "records_per_candle": 1.5,
         "compute_us": 40.0, "worker_vs_compute": 1.5}


@dataclass
class Config:
    quick: bool
    steady_s: float
    bursts: int
    max_target_s: float
    max_cap: int

    @classmethod
    def make(cls, quick: bool) -> "Config":
        if quick:
            return cls(True, steady_s=3.0, bursts=1, max_target_s=2.5, max_cap=40_000)
        return cls(False, steady_s=10.0, bursts=3, max_target_s=8.0, max_cap=250_000)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# ---------------------------------------------------------------------------------------------- rows


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


def _create_topics(broker: str, specs: list[tuple[str, dict[str, str]]]) -> None:
    from core.topics import TopicSpec, ensure_topics

    ensure_topics(broker, [TopicSpec(name, PARTITIONS, cfg) for name, cfg in specs])


def _child(args: list[str], log_path: Path) -> subprocess.Popen:
    from streams.broker import _die_with_parent

    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def start_row(name: str, broker: str, run_id: str, workdir: Path, model_dir: Path, threshold: float,
              worker_env: dict[str, str] | None = None) -> Row:
    """Start one row's process; ``worker_env``: CANDLEFLOW_* settings for the Candleflow rows."""
    from streams.broker import free_port

    prefix = f"bp{run_id}-{name}"
    state = workdir / f"state-{name}"
    log_path = workdir / f"{name}.log"
    if name in ("raw", "faust"):
        row = Row(name, False, f"{prefix}.candles.5m", f"{prefix}.out", None, decode_outputs=False)
        _create_topics(broker, [(row.source, {}), (row.outputs, {})])
        cfg = {"broker": broker, "source": row.source, "sink": row.outputs, "app_id": f"{prefix}-app",
               "partitions": PARTITIONS, "web_port": free_port(), "data_dir": str(state)}
        row.process = _child(["-m", "bench._pipeline_procs", name, json.dumps(cfg)], log_path)
    elif name == "quix":
        row = Row(name, False, f"{prefix}.candles.5m", f"{prefix}.predictions", f"{prefix}.signals", decode_outputs=True)
        # Quix's stateful mode reads retention.ms from the source topic's config (docs/platform.md).
        _create_topics(broker, [(row.source, {"retention.ms": str(7 * 24 * 3600 * 1000)}), (row.outputs, {}), (row.signals, {})])
        cfg = {"broker": broker, "group": f"{prefix}-app", "source": row.source, "predictions": row.outputs,
               "signals": row.signals, "model_dir": str(model_dir), "threshold": threshold, "state_dir": str(state)}
        row.process = _child(["-m", "bench.quix_baseline", json.dumps(cfg)], log_path)
    else:
        from core.settings import Settings
        from core.topics import ensure_topics, topic_specs
        from streams.worker_process import WorkerProcess

        settings = Settings.from_env(worker_env or {}, broker=broker, app_id=f"{prefix}-app", topic_prefix=prefix, partitions=PARTITIONS,
                                     timeframes=("5m",), model_dir=model_dir, data_dir=state, web_port=free_port(),
                                     signal_threshold=threshold)
        ensure_topics(broker, topic_specs(settings))
        row = Row(name, name == "candleflow-batch", settings.candle_topic("5m"), settings.topic("predictions"),
                  settings.topic("signals"), decode_outputs=True)
        row.worker = WorkerProcess(settings, log_path).start()
    row.pid = row.worker.process.pid if row.worker is not None else row.process.pid
    row.cleanup.append(state)
    return row


# ------------------------------------------------------------------------------------------ feeding


class Feed:
    """Produces the universe's candles to a row's source topic, single or batched, and tracks steps."""

    def __init__(self, feeder: Feeder, row: Row, universe: Universe, encoder: FastCandleEncoder):
        self.feeder, self.row, self.universe, self.enc = feeder, row, universe, encoder
        self.step = 0
        self.sent = 0

    def encode(self, pairs: list[tuple[int, int]]) -> list[tuple[bytes, bytes, int | None]]:
        """(symbol index, step) pairs -> messages (key, value, partition or None), in order."""
        u, enc = self.universe, self.enc
        if not self.row.batch_input:
            return [(u.keys[k], enc.candle(u.candle(k, s)), None) for k, s in pairs]
        groups: dict[int, list] = {}
        for k, s in pairs:
            groups.setdefault(partition_of(u.keys[k], PARTITIONS), []).append(k_s := (k, s))
        out = []
        for partition, items in groups.items():
            out.append((u.keys[items[0][0]], enc.batch([u.candle(k, s) for k, s in items]), partition))
        return out

    def produce(self, messages: list[tuple[bytes, bytes, int | None]], n_candles: int, mark_last: bool = True) -> None:
        topic, send = self.row.source, self.feeder.send
        for i, (key, value, partition) in enumerate(messages):
            send(topic, key, value, partition, last=mark_last and i == len(messages) - 1)
        self.feeder.poll()
        self.sent += n_candles

    def steps(self, symbols: int, n_steps: int) -> list[tuple[int, int]]:
        pairs = [(k, self.step + s) for s in range(n_steps) for k in range(symbols)]
        self.step += n_steps
        return pairs


# ---------------------------------------------------------------------------------------- measuring


def _record(value: Any, codec: Any) -> dict[str, Any]:
    """An output as a record: already decoded by the reader (a batch's item), or one message's value."""
    return value if isinstance(value, dict) else codec.decode(value)[1]


def _latencies(row: Row, records: list[tuple[float, int, bytes | None]], codec: Any) -> list[float]:
    if not row.decode_outputs:
        return [recv * 1000.0 - ts for recv, ts, _ in records]
    out = []
    for recv, _, value in records:
        produced = _record(value, codec).get("candle_produced_at")
        if produced:
            out.append(recv * 1000.0 - produced)
    return out


def _implied_signals(records: list[tuple[float, int, bytes | None]], codec: Any, threshold: float) -> int:
    n = 0
    for _, _, value in records:
        p = _record(value, codec)
        n += bool(p["ready"] and p["confidence"] >= threshold)
    return n


class Measure:
    """Waits for a regime's outputs and turns them into figures."""

    def __init__(self, row: Row, reader: Reader, codec: Any, threshold: float):
        self.row, self.reader, self.codec, self.threshold = row, reader, codec, threshold
        self.expected = 0
        self.expected_signals = 0

    def wait(self, n_new: int, timeout_s: float) -> tuple[bool, list]:
        start = self.expected
        self.expected += n_new
        topic = self.row.outputs
        ok = self.reader.wait_for(lambda: self.reader.count(topic) >= self.expected, timeout_s, self.row.alive)
        with self.reader.cond:
            records = list(self.reader.records[topic][start:self.expected])
        if ok and self.row.signals and self.row.decode_outputs:
            self.expected_signals += _implied_signals(records, self.codec, self.threshold)
            sig = self.row.signals
            ok = self.reader.wait_for(lambda: self.reader.count(sig) >= self.expected_signals, 30, self.row.alive)
        return ok, records

    def signal_latencies(self, since: int) -> list[float]:
        if not self.row.signals:
            return []
        with self.reader.cond:
            records = list(self.reader.records[self.row.signals][since:])
        return _latencies(self.row, records, self.codec)


def _timeout(n: int) -> float:
    return min(600.0, 60.0 + n / 300.0)


def run_row(name: str, ctx: dict[str, Any], cfg: Config, log) -> dict[str, Any]:
    broker, universe, encoder = ctx["broker"], ctx["universe"], ctx["encoder"]
    result: dict[str, Any] = {"row": name, "label": LABELS[name], "complete": False}
    row = start_row(name, broker, ctx["run_id"], ctx["workdir"], ctx["model_dir"], ctx["threshold"], ctx["worker_env"])
    topics = [row.outputs] + ([row.signals] if row.signals else [])
    codec = ctx["codec"]
    reader = Reader(broker, topics, PARTITIONS, keep_values={row.outputs, *( [row.signals] if row.signals else [])},
                    group=f"bp{ctx['run_id']}-{name}-reader",
                    explode=lambda value: [r for _, r in unbatch(*codec.decode(value))],  # PredictionBatch: each one
                    explode_topics=frozenset({row.outputs}) if row.decode_outputs else frozenset())
    feeder = Feeder(broker)
    feed = Feed(feeder, row, universe, encoder)
    measure = Measure(row, reader, ctx["codec"], ctx["threshold"])
    try:
        t0 = time.monotonic()
        if row.worker is not None:
            row.worker.wait_ready(120)
        # -- warm-up (not reported); Candleflow rows are warmed with CandleBatch messages either way
        pairs = feed.steps(BURST_SYMBOLS, WARMUP_STEPS)  # every symbol: the burst closes warm series
        warm_batch = row.worker is not None
        row.batch_input, saved = warm_batch or row.batch_input, row.batch_input
        if warm_batch:
            msgs = []
            for s in range(WARMUP_STEPS):
                msgs += feed.encode(pairs[s * BURST_SYMBOLS:(s + 1) * BURST_SYMBOLS])
        else:
            msgs = feed.encode(pairs)
        row.batch_input = saved
        feed.produce(msgs, len(pairs))
        feeder.flush()
        ok, _ = measure.wait(len(pairs), _timeout(len(pairs)) + 60)
        if not ok:
            raise RuntimeError(f"{name}: warm-up outputs did not all arrive (log: {ctx['workdir'] / (name + '.log')})")
        result["startup_and_warmup_s"] = round(time.monotonic() - t0, 1)
        log(f"  {name}: warm ({len(pairs)} candles) in {result['startup_and_warmup_s']} s")

        # -- bursts: 2,000 symbols close the same candle
        bursts, burst_lat, burst_est = [], [], []
        for _ in range(cfg.bursts):
            pairs = feed.steps(BURST_SYMBOLS, 1)
            msgs = feed.encode(pairs)
            feeder.last_ts_ms = 0
            first_ms = time.time() * 1000
            feed.produce(msgs, len(pairs))
            feeder.flush()
            ok, records = measure.wait(len(pairs), _timeout(len(pairs)))
            if not ok:
                raise RuntimeError(f"{name}: burst outputs incomplete")
            last_out = max(r[0] for r in records) * 1000
            bursts.append(last_out - feeder.last_ts_ms)
            burst_est.append(len(pairs) / max(1e-3, (last_out - first_ms) / 1000))
            burst_lat += _latencies(row, records, ctx["codec"])
        result["burst"] = {"symbols": BURST_SYMBOLS, "bursts": cfg.bursts, "messages_per_burst": len(msgs),
                           "last_out_ms": _r(pct(bursts, 50)), "last_out_ms_worst": _r(max(bursts)),
                           "p50_ms": _r(pct(burst_lat, 50)), "p99_ms": _r(pct(burst_lat, 99))}
        log(f"  {name}: burst {result['burst']}")

        # -- steady 1,000 candles/s
        n = int(STEADY_RATE * cfg.steady_s)
        steps_needed = math.ceil(n / LIVE_SYMBOLS)
        base_step = feed.step
        feed.step += steps_needed
        all_pairs = [(j % LIVE_SYMBOLS, base_step + j // LIVE_SYMBOLS) for j in range(n)]
        sig_since = reader.count(row.signals) if row.signals else 0
        started, sent = time.monotonic(), 0
        while sent < n:
            due = min(n, int((time.monotonic() - started) * STEADY_RATE) + 1)
            if due > sent:
                chunk = all_pairs[sent:due]
                feed.produce(feed.encode(chunk), len(chunk), mark_last=due == n)
                sent = due
            time.sleep(max(0.0, started + sent / STEADY_RATE - time.monotonic()) if sent < n else 0)
        feeder.flush()
        feed_s = time.monotonic() - started
        ok, records = measure.wait(n, 60.0 + 2.0 * n / max(50.0, max(burst_est)))
        lat = _latencies(row, records, ctx["codec"])
        sig = measure.signal_latencies(sig_since)
        out_span = (max(r[0] for r in records) - min(r[0] for r in records)) if len(records) > 1 else 0.0
        result["steady"] = {"candles": n, "offered_per_s": round(n / feed_s, 1), "complete": ok,
                            "kept_up": bool(ok and out_span > 0 and len(records) / out_span >= 0.95 * STEADY_RATE * min(1.0, n / STEADY_RATE / feed_s)),
                            "p50_ms": _r(pct(lat, 50)), "p99_ms": _r(pct(lat, 99)), "max_ms": _r(max(lat) if lat else None),
                            "signals": len(sig), "signal_p50_ms": _r(pct(sig, 50)), "signal_p99_ms": _r(pct(sig, 99))}
        log(f"  {name}: steady {result['steady']}")
        if not ok:
            raise RuntimeError(f"{name}: steady outputs incomplete (it cannot sustain {STEADY_RATE:.0f}/s here)")

        # -- max rate
        est = max(burst_est)
        n = int(min(cfg.max_cap, max(4 * LIVE_SYMBOLS, est * cfg.max_target_s)))
        n_steps = math.ceil(n / LIVE_SYMBOLS)
        pairs = feed.steps(LIVE_SYMBOLS, n_steps)
        n = len(pairs)
        if row.batch_input:  # one CandleBatch per partition per candle close
            msgs = []
            for s in range(n_steps):
                msgs += feed.encode(pairs[s * LIVE_SYMBOLS:(s + 1) * LIVE_SYMBOLS])
        else:
            msgs = feed.encode(pairs)
        records0 = produced_records(broker, ctx["run_id"], name, row.source)
        cpu0, broker_cpu0 = proc_cpu_s(row.pid), proc_cpu_s(ctx["broker_pid"])
        t_start = time.time()
        feed.produce(msgs, n)
        feeder.flush()
        feed_s = time.time() - t_start
        ok, records = measure.wait(n, _timeout(n))
        cpu1, broker_cpu1 = proc_cpu_s(row.pid), proc_cpu_s(ctx["broker_pid"])
        if row.worker is not None:  # its last checkpoint (state, changelogs) follows the outputs within an interval
            time.sleep(2 * float(ctx["worker_env"].get("CANDLEFLOW_CHECKPOINT_INTERVAL_S", 1.0)))
        records1 = produced_records(broker, ctx["run_id"], name, row.source)
        recv = sorted(r[0] for r in records)
        lat = _latencies(row, records, ctx["codec"])
        lo, hi = int(len(recv) * 0.1), max(int(len(recv) * 0.9) - 1, 0)
        span = recv[hi] - recv[lo] if recv else 0
        sustained = (hi - lo) / span if span > 0 else None
        result["max"] = {"candles": n, "messages": len(msgs), "complete": ok,
                         "feed_per_s": round(n / max(feed_s, 1e-6)),
                         "sustained_per_s": _r(sustained, 0), "overall_per_s": _r(n / max(1e-6, recv[-1] - t_start), 0) if recv else None,
                         "p50_ms": _r(pct(lat, 50)), "p99_ms": _r(pct(lat, 99)),
                         "cpu_us_per_candle": _r((cpu1 - cpu0) / n * 1e6) if cpu0 is not None and cpu1 is not None else None,
                         "records_per_candle": _r((records1 - records0) / n, 2),
                         "broker_cpu_us_per_candle": _r((broker_cpu1 - broker_cpu0) / n * 1e6) if broker_cpu0 is not None else None}
        log(f"  {name}: max {result['max']}")
        result["peak_rss_mb"] = _r(proc_peak_rss_mb(row.pid), 0)
        result["complete"] = ok
    except Exception as exc:  # keep the other rows: report what failed
        result["error"] = str(exc)
        log(f"  {name}: FAILED: {exc}")
        if row.pid:
            result.setdefault("peak_rss_mb", _r(proc_peak_rss_mb(row.pid), 0))
    finally:
        row.stop()
        reader.stop()
        delete_topics(broker, f"bp{ctx['run_id']}-{name}")
    return result


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


def measure_floor(ctx: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """The bench's own share of every latency: feeder -> broker -> reader at 1,000 msg/s, no processor."""
    topic = f"bp{ctx['run_id']}-floor"
    _create_topics(ctx["broker"], [(topic, {})])
    reader = Reader(ctx["broker"], [topic], PARTITIONS, set(), group=f"{topic}-reader")
    feeder = Feeder(ctx["broker"])
    universe, enc = ctx["universe"], ctx["encoder"]
    n = int(STEADY_RATE * (1.0 if cfg.quick else 3.0))
    try:
        for j in range(50):  # until the reader fetches: its first fetches (offset lookups) are slow
            feeder.send(topic, b"prime", b"prime")
        feeder.flush()
        reader.wait_for(lambda: reader.count(topic) >= 50, 30)
        time.sleep(0.2)
        with reader.cond:
            reader.records[topic].clear()
        started = time.monotonic()
        for j in range(n):
            k = j % LIVE_SYMBOLS
            feeder.send(topic, universe.keys[k], enc.candle(universe.candle(k, j // LIVE_SYMBOLS)))
            feeder.poll()
            time.sleep(max(0.0, started + (j + 1) / STEADY_RATE - time.monotonic()))
        feeder.flush()
        reader.wait_for(lambda: reader.count(topic) >= n, 30)
        lat = [recv * 1000.0 - ts for recv, ts, _ in reader.records[topic]]
        return {"messages": len(lat), "p50_ms": _r(pct(lat, 50)), "p99_ms": _r(pct(lat, 99))}
    finally:
        reader.stop()


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(float(x), digits) if digits else round(float(x))


# ------------------------------------------------------------------------------------------ running


def ensure_model(model_dir: Path | None, log) -> Path:
    """The model every row scores with: by default the one ``make demo`` trains and serves (LightGBM per
    horizon 1..5 with every ensemble member it has, in ``CANDLEFLOW_MODEL_DIR``), trained first if
    missing; ``--model-dir`` points the worker, Quix and the compute row at another."""
    if model_dir is not None:
        return model_dir.resolve()
    from streams.demo import BUNDLED_CANDLES, ensure_model as ensure_demo_model
    from core.settings import Settings

    model_dir = Settings.from_env().model_dir
    ensure_demo_model(model_dir, sorted(BUNDLED_CANDLES.glob("*.csv.gz")), progress=False)
    log(f"model: {model_dir}")
    return model_dir.resolve()


def run(cfg: Config, rows: tuple[str, ...] = ROWS, log=lambda s: print(s, file=sys.stderr, flush=True),
        profile: bool = False, model_dir: Path | None = None, worker_env: dict[str, str] | None = None) -> dict[str, Any]:
    from schemas import SCHEMA_NAMES, MultiCodec, store_from_url
    from streams.broker import EmbeddedBroker
    from core.settings import Settings

    settings = Settings.from_env()
    model_dir = ensure_model(model_dir, log)
    universe = Universe(BURST_SYMBOLS)
    encoder = FastCandleEncoder()
    encoder.verify([universe.candle(k, s) for k in range(0, BURST_SYMBOLS, 131) for s in (0, 7)])
    workdir = Path(tempfile.mkdtemp(prefix="candleflow-bench-pipeline-"))
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    started = time.monotonic()
    figures: dict[str, Any] = {"quick": cfg.quick, "load_average_start": load_average(), "inputs": universe.describe(),
                               "live_symbols": LIVE_SYMBOLS, "burst_symbols": BURST_SYMBOLS, "partitions": PARTITIONS,
                               "threshold": settings.signal_threshold, "model_dir": str(model_dir),
                               "worker_env": dict(worker_env or {}), "rows": {}}
    try:
        import quixstreams

        figures["quixstreams"] = quixstreams.__version__
    except ImportError:
        figures["quixstreams"] = None
        rows = tuple(r for r in rows if r != "quix")
        log("quixstreams is not installed (pip install quixstreams): the quix row is skipped")
    try:
        broker.start()
        ctx = {"broker": broker.bootstrap, "broker_pid": broker._process.pid, "universe": universe, "encoder": encoder,
               "run_id": uuid.uuid4().hex[:6], "workdir": workdir, "model_dir": model_dir, "worker_env": dict(worker_env or {}),
               "threshold": settings.signal_threshold, "codec": MultiCodec(list(SCHEMA_NAMES), store_from_url(None))}
        log(f"broker at {broker.bootstrap}; inputs: {universe.describe()}")
        figures["floor"] = measure_floor(ctx, cfg)
        log(f"bench floor (feeder -> reader, no processor, 1,000/s): {figures['floor']}")
        for name in rows:
            log(f"{LABELS[name]} ...")
            if name == "compute":
                from bench.compute import compute_row

                figures["rows"][name] = compute_row(model_dir)
                log(f"  compute: {figures['rows'][name]}")
                continue
            figures["rows"][name] = run_row(name, ctx, cfg, log)
        if profile:
            from bench._pipeline_profile import profile_rows

            figures["profile"] = profile_rows(ctx, cfg, log)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures["load_average_end"] = load_average()
    figures["elapsed_s"] = round(time.monotonic() - started, 1)
    figures["goals"] = goals(figures["rows"], figures.get("floor"))
    return figures


def goals(rows: dict[str, Any], floor: dict[str, Any] | None = None) -> dict[str, Any]:
    """Issue 13's goals, each a figure and whether it is met (None: not measured in this run)."""
    def get(row: str, *path: str) -> Any:
        x: Any = rows.get(row, {})
        for p in path:
            x = (x or {}).get(p)
        return x

    def ratio(a: Any, b: Any) -> float | None:
        return _r(a / b, 2) if a and b else None

    floor = floor or {}
    out: dict[str, Any] = {}
    # Overall rates: the 10-90 % "sustained" figure flatters a row whose outputs come in a few large bursts.
    e, d = get("candleflow-batch", "max", "overall_per_s"), get("candleflow", "max", "overall_per_s")
    b, q = get("faust", "max", "overall_per_s"), get("quix", "max", "overall_per_s")
    out["batch_vs_faust"], out["batch_vs_quix"], out["single_vs_faust"] = ratio(e, b), ratio(e, q), ratio(d, b)
    for key in ("batch_vs_faust", "batch_vs_quix", "single_vs_faust"):
        out[f"{key}_ok"] = None if out[key] is None else out[key] >= GOALS[key]
    for row in ("candleflow", "candleflow-batch"):
        steady = get(row, "steady") or {}
        out[f"{row}_steady_kept_up"] = steady.get("kept_up")
        for q_, limit in (("p50", "steady_p50_over_floor_ms"), ("p99", "steady_p99_over_floor_ms")):
            v, f = steady.get(f"{q_}_ms"), floor.get(f"{q_}_ms")
            out[f"{row}_steady_{q_}_ok"] = None if v is None or f is None else v <= f + GOALS[limit]
        out[f"{row}_burst_ok"] = _ok(get(row, "burst", "last_out_ms"), GOALS["burst_last_ms"])
        out[f"{row}_rss_ok"] = _ok(get(row, "peak_rss_mb"), GOALS["rss_mb"])
    out["records_per_candle"] = get("candleflow-batch", "max", "records_per_candle")
    out["records_per_candle_ok"] = _ok(out["records_per_candle"], GOALS["records_per_candle"])
    compute, worker = get("compute", "cpu_us_per_candle"), get("candleflow-batch", "max", "cpu_us_per_candle")
    out["compute_ok"] = _ok(compute, GOALS["compute_us"])
    out["worker_vs_compute"] = ratio(worker, compute)
    out["worker_vs_compute_ok"] = _ok(out["worker_vs_compute"], GOALS["worker_vs_compute"])
    return out


def _ok(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _fmt(x: Any, spec: str = ",.0f") -> str:
    return "n/a" if x is None else format(x, spec)


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"Pipeline benchmark ({'quick' if figures['quick'] else 'full'} run, {figures['elapsed_s']} s; load average "
        f"{figures['load_average_start']} at start, {figures['load_average_end']} at end; 2 cores shared)",
        f"Inputs: {figures['inputs']}. Live symbols: {figures['live_symbols']}; burst: {figures['burst_symbols']} symbols; "
        f"{figures['partitions']} partitions; one embedded Tansu broker; quixstreams {figures.get('quixstreams')}; "
        f"Candleflow settings: {' '.join(f'{k}={v}' for k, v in figures['worker_env'].items()) or 'defaults'}.",
        f"Bench floor (feeder -> broker -> reader, no processor, 1,000 msg/s): p50 {_fmt((figures.get('floor') or {}).get('p50_ms'), '.1f')} ms, "
        f"p99 {_fmt((figures.get('floor') or {}).get('p99_ms'), '.1f')} ms (included in every latency below).",
        "",
        "| row | max candles/s (overall / 10-90 %) | CPU us/candle | steady 1k/s p50 / p99 ms | burst 2,000: last out ms (p50 / p99) | max-rate p50 / p99 ms | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in figures["rows"].items():
        if name == "compute":  # no Kafka in it: its line follows the table
            continue
        st, bu, mx = r.get("steady") or {}, r.get("burst") or {}, r.get("max") or {}
        lines.append(
            f"| {r['label']} | {_fmt(mx.get('overall_per_s'))} / {_fmt(mx.get('sustained_per_s'))} | {_fmt(mx.get('cpu_us_per_candle'), ',.1f')} "
            f"| {_fmt(st.get('p50_ms'), '.1f')} / {_fmt(st.get('p99_ms'), '.1f')} "
            f"| {_fmt(bu.get('last_out_ms'))} ({_fmt(bu.get('p50_ms'))} / {_fmt(bu.get('p99_ms'))}) "
            f"| {_fmt(mx.get('p50_ms'))} / {_fmt(mx.get('p99_ms'))} | {_fmt(r.get('peak_rss_mb'))} |"
            + (f" FAILED: {r['error']}" if r.get("error") else ""))
    compute = figures["rows"].get("compute")
    if compute:
        lines += ["", f"{compute['label']}: {_fmt(compute.get('cpu_us_per_candle'), ',.1f')} CPU us per candle "
                      f"({compute.get('symbols')} symbols per batch, outcome loop on, model {compute.get('model')})"]
    records = [f"{r['label'][:3]} {_fmt((r.get('max') or {}).get('records_per_candle'), '.2f')}"
               for r in figures["rows"].values() if (r.get("max") or {}).get("records_per_candle") is not None]
    if records:
        lines.append("Records produced per candle at max rate, changelogs included: " + ", ".join(records))
    g = figures["goals"]
    yes = lambda v: "n/a" if v is None else ("met" if v else "MISSED")  # noqa: E731
    lines += ["", "Goals (issue 13):",
              f"  (e) CandleBatch >= 2x Faust forwarder: {_fmt(g['batch_vs_faust'], '.2f')}x {yes(g['batch_vs_faust_ok'])}; "
              f">= 3x Quix: {_fmt(g['batch_vs_quix'], '.2f')}x {yes(g['batch_vs_quix_ok'])}",
              f"  (d) single-candle >= Faust forwarder: {_fmt(g['single_vs_faust'], '.2f')}x {yes(g['single_vs_faust_ok'])}",
              f"  records per candle (e) <= 1.5: {_fmt(g['records_per_candle'], '.2f')} {yes(g['records_per_candle_ok'])}; "
              f"compute <= 40 us: {yes(g['compute_ok'])}; worker CPU (e) <= 1.5x compute: "
              f"{_fmt(g['worker_vs_compute'], '.2f')}x {yes(g['worker_vs_compute_ok'])}"]
    for row in ("candleflow", "candleflow-batch"):
        lines.append(f"  {row}: steady kept up {yes(g[f'{row}_steady_kept_up'])}, p50 <= floor + 10 ms {yes(g[f'{row}_steady_p50_ok'])}, "
                     f"p99 <= floor + 50 ms {yes(g[f'{row}_steady_p99_ok'])}, burst <= 250 ms {yes(g[f'{row}_burst_ok'])}, "
                     f"RSS <= 500 MB {yes(g[f'{row}_rss_ok'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="also print every figure as one JSON object, last line")
    parser.add_argument("--quick", action="store_true", help="a reduced run (< 3 minutes) for smoke tests")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--model-dir", type=Path, default=None, help="model for the worker and Quix (default: a bench-trained "
                        "one-horizon LightGBM in var/bench/pipeline/)")
    parser.add_argument("--profile", action="store_true", help="also profile the Candleflow rows at max rate (py-spy)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="CANDLEFLOW_X=VALUE",
                        help="a setting for the Candleflow rows, e.g. the latency ones in BENCHMARKS.md (repeatable)")
    args = parser.parse_args(argv)
    worker_env = dict(item.split("=", 1) for item in args.worker_env if "=" in item)
    if len(worker_env) != len(args.worker_env) or not all(k.startswith("CANDLEFLOW_") for k in worker_env):
        parser.error("--worker-env takes CANDLEFLOW_<SETTING>=<value>")
    from core.errors import ConfigError
    from core.settings import Settings

    try:
        Settings.from_env(worker_env)  # a bad value: one line now, not a worker dying later
    except ConfigError as exc:
        parser.error(str(exc))
    rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    figures = run(Config.make(args.quick), rows, profile=args.profile, model_dir=args.model_dir, worker_env=worker_env)
    print(report(figures))
    if args.json:
        print(json.dumps(figures, separators=(",", ":")))
    failed = [n for n, r in figures["rows"].items() if not r.get("complete")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
