"""``bench.pipeline --profile``: where a Candleflow worker's CPU goes per candle at max rate.

The worker (every thread: the event loop and Faust's consumer thread) is sampled with py-spy
(``pip install py-spy``) while it drains a backlog of candles; each sample is attributed twice:
to the agent it runs under (root-most match) and to the component at the top of the stack
(leaf-most match). Samples / sampling rate / candles = microseconds of CPU per candle.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections import Counter
from typing import Any

__all__ = ["profile_rows", "profile_report"]

RATE_HZ = 200

# leaf-most match wins: (category, substrings of "function (file:line)")
COMPONENTS = [
    ("FeatureState to_bytes/from_bytes (table values)", ("features/codec.py",)),
    ("ONNX Runtime run", ("onnx_session.py", "onnxruntime", "predict_proba", "bundle.py", "ensemble.py")),
    ("feature update (FeatureBank, FeatureState)", ("features/", "streams/series_book.py")),
    ("checkpoint (state encode, changelog, acks)", ("agents/checkpoint.py", "streams/series.py")),
    ("Avro encode", ("fastavro/_write", "schemas/codec.py:encode", "encode (schemas/codec.py", "faust_codecs.py", "schemas/checks.py")),
    ("Avro decode + validate", ("fastavro/_read", "decode (schemas/codec.py", "_read (schemas/codec.py", "ingest.py", "core/candle.py")),
    ("ids, decide, records (sha256/json)", ("core/signals.py", "streams/scoring.py")),
    ("outcome loop (labeller, learner, feature join)", ("learning/", "agents/outcomes.py")),
    ("Faust tables + changelog", ("faust/tables/", "faust/stores/", "rocksdict")),
    ("aiokafka producer (send, batches)", ("aiokafka/producer/", "faust/transport/producer", "aiokafka/record/")),
    ("aiokafka consumer (fetch, decode records)", ("aiokafka/consumer/", "aiokafka/conn", "aiokafka/protocol", "aiokafka/client")),
    ("Faust streams/events/acks", ("faust/streams", "faust/events", "faust/transport/", "faust/channels", "faust/topics", "faust/agents")),
    ("logging", ("logging/__init__",)),
    ("asyncio event loop + mode", ("asyncio/", "mode/", "selectors.py")),
    ("web views / timers", ("candleflow/web/", "aiohttp/", "faust/web/")),
]
AGENTS = [("candle agent", "agents/candles.py"), ("label agent", "label (agents/outcomes.py"),
          ("learn agent", "learn (agents/outcomes.py")]


def _classify(stack: list[str]) -> tuple[str, str]:
    component = "other"
    for frame in reversed(stack):
        hit = next((name for name, pats in COMPONENTS if any(p in frame for p in pats)), None)
        if hit:
            component = hit
            break
    agent = "other (consumer thread, producer, loop, timers)"
    for frame in stack:
        hit = next((name for name, pat in AGENTS if pat in frame), None)
        if hit:
            agent = hit
            break
    return component, agent


def summarise(raw_path: str, candles: int) -> dict[str, Any]:
    comps: Counter = Counter()
    agents: Counter = Counter()
    threads: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    with open(raw_path) as fh:
        for line in fh:
            line = line.rstrip()
            if not line:
                continue
            stack_s, _, count_s = line.rpartition(" ")
            count = int(count_s)
            frames = stack_s.split(";")
            thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
            comp, agent = _classify(frames)
            comps[comp] += count
            agents[agent] += count
            threads[thread] += count
            leaves[frames[-1].split(" (")[0] + " (" + frames[-1].split("/")[-1]] += count
            total += count
    us = lambda n: round(n / RATE_HZ / max(candles, 1) * 1e6, 1)  # noqa: E731
    share = lambda n: round(100.0 * n / max(total, 1), 1)  # noqa: E731
    return {"samples": total, "candles": candles, "cpu_us_per_candle_sampled": us(total),
            "components_pct": {k: share(v) for k, v in comps.most_common()},
            "agents_pct": {k: share(v) for k, v in agents.most_common()},
            "top_leaves_pct": {k: share(v) for k, v in leaves.most_common(15)},
            "components_us": {k: us(v) for k, v in comps.most_common()},
            "agents_us": {k: us(v) for k, v in agents.most_common()},
            "threads_us": {k: us(v) for k, v in threads.most_common(4)}}


def profile_rows(ctx: dict[str, Any], cfg: Any, log) -> dict[str, Any]:
    from bench._pipeline_config import LIVE_SYMBOLS, WARMUP_STEPS
    from bench._pipeline_feed import Feed
    from bench._pipeline_io import Feeder
    from bench._pipeline_measure import Measure
    from bench._pipeline_regimes import row_reader
    from bench._pipeline_rows import start_row

    spy = shutil.which("py-spy") or str(__import__("pathlib").Path(__import__("sys").executable).parent / "py-spy")
    out: dict[str, Any] = {}
    # Its own topics and its own state directory: RocksDB state left by the row of the same name belongs to
    # that row's changelogs (Faust refuses a store ahead of its changelog).
    workdir = ctx["workdir"] / "profile"
    workdir.mkdir(exist_ok=True)
    for name in ("candleflow", "candleflow-batch"):
        row = start_row(name, ctx["broker"], ctx["run_id"] + "p", workdir, ctx["model_dir"], ctx["threshold"], ctx["worker_env"])
        reader = row_reader(row, ctx, group=f"bp{ctx['run_id']}-{name}-profile")
        feeder = Feeder(ctx["broker"])
        feed = Feed(feeder, row, ctx["universe"], ctx["encoder"])
        measure = Measure(row, reader, ctx["codec"], ctx["threshold"])
        keep = __import__("pathlib").Path(__file__).resolve().parents[1] / "var" / "bench" / "pipeline"
        keep.mkdir(parents=True, exist_ok=True)
        raw_path = str(keep / f"profile-{name}.txt")  # kept: py-spy's collapsed stacks, for flame graphs
        try:
            row.worker.wait_ready(120)
            saved, row.batch_input = row.batch_input, True
            pairs = feed.steps(LIVE_SYMBOLS, WARMUP_STEPS)
            msgs = []
            for s in range(WARMUP_STEPS):
                msgs += feed.encode(pairs[s * LIVE_SYMBOLS:(s + 1) * LIVE_SYMBOLS])
            row.batch_input = saved
            feed.produce(msgs, len(pairs))
            feeder.flush()
            if not measure.wait(len(pairs), 180)[0]:
                raise RuntimeError("warm-up incomplete")
            n_steps = 15 if cfg.quick else 40
            pairs = feed.steps(LIVE_SYMBOLS, n_steps)
            msgs = []
            if row.batch_input:
                for s in range(n_steps):
                    msgs += feed.encode(pairs[s * LIVE_SYMBOLS:(s + 1) * LIVE_SYMBOLS])
            else:
                msgs = feed.encode(pairs)
            spy_proc = subprocess.Popen([spy, "record", "--pid", str(row.pid), "--rate", str(RATE_HZ), "--threads",
                                         "--format", "raw", "--output", raw_path, "--nonblocking"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # py-spy attaches
            t0 = time.time()
            feed.produce(msgs, len(pairs))
            feeder.flush()
            ok, _ = measure.wait(len(pairs), 600)
            elapsed = time.time() - t0
            spy_proc.send_signal(signal.SIGINT)
            spy_proc.wait(30)
            result = summarise(raw_path, len(pairs))
            result.update({"complete": ok, "wall_s": round(elapsed, 2), "candles_per_s": round(len(pairs) / elapsed)})
            out[name] = result
            log(f"  profile {name}: {result}")
        except Exception as exc:
            out[name] = {"error": str(exc)}
            log(f"  profile {name} FAILED: {exc}")
        finally:
            row.stop()
            reader.stop()
            from bench._pipeline_rows import delete_topics

            delete_topics(ctx["broker"], f"bp{ctx['run_id']}p-{name}")
    return out


def profile_report(profile: dict[str, Any]) -> str:
    lines = ["Profile (py-spy, all worker threads, at max rate; CPU us per candle):"]
    for name, p in profile.items():
        if "error" in p:
            lines.append(f"  {name}: failed: {p['error']}")
            continue
        lines.append(f"  {name}: {p['candles']} candles at {p['candles_per_s']}/s, {p['cpu_us_per_candle_sampled']} us sampled per candle")
        lines.append("    by agent (% of samples): " + ", ".join(f"{k} {v}" for k, v in p["agents_pct"].items()))
        lines.append("    by component (% of samples): " + ", ".join(f"{k} {v}" for k, v in p["components_pct"].items()))
        lines.append("    top leaf functions (%): " + ", ".join(f"{k} {v}" for k, v in p["top_leaves_pct"].items()))
    return "\n".join(lines)
