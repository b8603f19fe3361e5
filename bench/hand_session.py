"""The README's session by hand, as one command: broker, worker, ``candleflow produce --rate R``, then ``/stats``.

Run: ``python -m bench.hand_session [--rate 1000] [--model var/models/candleflow] [--json]``.

What a new user does after ``make demo`` (README, "By hand"): an embedded broker, ``candleflow worker`` with
every default and the model ``make demo`` trains, and ``candleflow produce`` of the two bundled real files
at ``--rate`` candles a second. When every candle is predicted it reads the worker's ``/stats`` (the
end-to-end latency of its last 4,096 candles: produced -> prediction written) and ``/health``, and the
worker's peak RSS. Goal (issue 13): the worker keeps up (every candle predicted within ``KEPT_UP_S`` of the
producer's end) and the end-to-end p50 is <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._model_argument import parse_model_bench_args
from bench._pipeline_io import proc_peak_rss_mb

__all__ = ["hand_session"]

REPO = Path(__file__).resolve().parents[1]
FILES = ("data/candles/ETH-BTC_5m.csv.gz", "data/candles/LTC-BTC_5m.csv.gz")
GOAL_P50_MS = 100.0
KEPT_UP_S = 5.0  # every candle predicted this soon after the producer's last one: the worker kept up


def hand_session(rate: int, model_dir: Path, workdir: Path, settle_s: float = 30.0) -> dict[str, Any]:
    """One session: the figures the goal is judged by, and what explains them."""
    from core.settings import Settings
    from streams.broker import EmbeddedBroker, free_port
    from streams.worker_process import WorkerProcess

    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        settings = Settings.from_env({}, broker={"bootstrap": broker.bootstrap}, model_dir=model_dir,
                                     data_dir=workdir / "state", web={"port": free_port()})
        worker = WorkerProcess(settings, workdir / "worker.log").start()
        try:
            worker.wait_ready(timeout_s=120)
            env = {**os.environ, "CANDLEFLOW_BROKER": broker.bootstrap}
            started = time.monotonic()
            produced = subprocess.run([sys.executable, "-m", "candleflow", "produce", *FILES, "--rate", str(rate)],
                                      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
            if produced.returncode != 0:
                raise RuntimeError(f"candleflow produce failed: {produced.stderr[-500:]}")
            produce_s = time.monotonic() - started
            expected = _candles_in(FILES)
            deadline = time.monotonic() + settle_s
            stats = worker.get("/stats")
            while stats.get("predictions", 0) < expected and time.monotonic() < deadline:
                time.sleep(0.5)
                stats = worker.get("/stats")
            behind_s = max(0.0, time.monotonic() - started - produce_s)
            rss = proc_peak_rss_mb(worker.process.pid)
        finally:
            worker.stop()
    e2e = stats.get("end_to_end_ms") or {}
    complete = stats.get("predictions", 0) >= expected
    kept_up = complete and behind_s <= KEPT_UP_S
    return {"rate": rate, "candles": expected, "produce_s": round(produce_s, 1),
            "offered_per_s": round(expected / produce_s, 1), "predictions": stats.get("predictions"),
            "signals": stats.get("signals"), "dead_letters": stats.get("dead_letters"),
            "all_predicted_after_s": round(behind_s, 1) if complete else None, "kept_up": kept_up,
            "end_to_end_ms": e2e, "batch_size": stats.get("batch_size"), "inference_ms": stats.get("inference_ms"),
            "consumer_lag": stats.get("consumer_lag"), "providers": stats.get("providers"),
            "served": (stats.get("serving") or {}).get("served"),
            "peak_rss_mb": None if rss is None else round(rss),
            "goal_met": bool(kept_up and e2e.get("p50") is not None and e2e["p50"] <= GOAL_P50_MS)}


def _candles_in(files: tuple[str, ...]) -> int:
    from core.candle_files import read_candle_file

    return sum(len(read_candle_file(REPO / f).candles) for f in files)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.hand_session", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="candles a second for candleflow produce (default 1000)")
    args = parse_model_bench_args(parser, argv)
    if args is None:
        return 2
    if args.rate < 1:
        parser.error(f"--rate must be at least 1, got {args.rate}")
    with tempfile.TemporaryDirectory(prefix="candleflow-hand-") as tmp:
        result = hand_session(args.rate, args.model, Path(tmp))
    e2e = result["end_to_end_ms"]
    print(f"The README's session by hand at --rate {args.rate}: {result['candles']} candles offered at "
          f"{result['offered_per_s']}/s; predicted {result['predictions']}, signals {result['signals']}, "
          f"dead letters {result['dead_letters']}; every candle predicted {result['all_predicted_after_s']} s after "
          f"the producer's end; kept up (<= {KEPT_UP_S:.0f} s): {result['kept_up']}")
    print(f"end-to-end p50 {_ms(e2e.get('p50'))} ms, p99 {_ms(e2e.get('p99'))} ms (last candles); candles a step "
          f"{result['batch_size']}; consumer lag {result['consumer_lag']}; served {result['served']}; "
          f"providers {result['providers']}; worker peak RSS {result['peak_rss_mb']} MB")
    print(f"goal (keeps up, p50 <= {GOAL_P50_MS:.0f} ms): {'met' if result['goal_met'] else 'MISSED'}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
