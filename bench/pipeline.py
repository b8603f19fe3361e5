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

- warm-up: ``WARMUP_STEPS`` closes of every symbol, so features are ready (a burst closes 2,000 warm
  series, as a 2,000-symbol universe does every interval); only its sustained rate is reported
  (``warmup``): a row too slow to finish it in its time-out fails there with that rate shown (for
  Quix: ``goals.quix_unfinished_warmup_per_s``, and the ``>= 3x Quix`` goal is then not judged; a Quix row
  that fails in a later regime: ``goals.quix_failed_after_warmup``, its error and both warm-up rates, not judged);
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

Modules: the parameters ``bench._pipeline_config``; the rows' processes ``bench._pipeline_rows`` (the
reference processors: ``bench._pipeline_procs``, ``bench.quix_baseline``); feeding ``bench._pipeline_feed``
(inputs: ``bench._pipeline_data``, Kafka clients: ``bench._pipeline_io``); measuring
``bench._pipeline_measure``; the regimes of a row ``bench._pipeline_regimes``; goals and report
``bench._pipeline_report``; ``--profile``: ``bench._pipeline_profile``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._pipeline_config import BURST_SYMBOLS, LABELS, LIVE_SYMBOLS, PARTITIONS, ROWS, Config
from bench._pipeline_data import FastCandleEncoder, Universe
from bench._pipeline_measure import measure_floor
from bench._pipeline_regimes import run_row
from bench._pipeline_report import goals, report

__all__ = ["ensure_model", "main", "run"]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def ensure_model(model_dir: Path | None, log) -> Path:
    """The model every row scores with: by default the one ``make demo`` trains and serves (LightGBM per
    horizon 1..5 with every ensemble member it has, in ``CANDLEFLOW_MODEL_DIR``), trained first if
    missing; ``--model-dir`` points the worker, Quix and the compute row at another."""
    if model_dir is not None:
        return model_dir.resolve()
    from candleflow.demo import BUNDLED_CANDLES, ensure_model as ensure_demo_model
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
            if name != "compute":
                log(f"{LABELS[name]} ...")
                figures["rows"][name] = run_row(name, ctx, cfg, log)
        if profile:
            from bench._pipeline_profile import profile_rows

            figures["profile"] = profile_rows(ctx, cfg, log)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if "compute" in rows:  # in a process of its own, once the broker is gone (bench/compute.py)
        from bench.compute import compute_row_apart

        log(f"{LABELS['compute']} ...")
        figures["rows"]["compute"] = compute_row_apart(model_dir)
        log(f"  compute: {figures['rows']['compute']}")
    figures["load_average_end"] = load_average()
    figures["elapsed_s"] = round(time.monotonic() - started, 1)
    figures["goals"] = goals(figures["rows"], figures.get("floor"))
    return figures


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
