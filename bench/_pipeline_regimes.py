"""One row of ``bench.pipeline`` through its regimes: warm-up, bursts, steady 1,000 candles/s, max rate
(:func:`run_row`), each done when every output is counted."""

from __future__ import annotations

import math
import time
from typing import Any

from bench._pipeline_config import BURST_SYMBOLS, LABELS, LIVE_SYMBOLS, PARTITIONS, STEADY_RATE, WARMUP_STEPS, Config
from bench._pipeline_feed import Feed
from bench._pipeline_io import Feeder, Reader, proc_cpu_s, proc_peak_rss_mb
from bench._pipeline_measure import Measure, latencies, pct, rounded, sustained_rate, timeout_for
from bench._pipeline_rows import delete_topics, produced_records, start_row
from schemas import unbatch

__all__ = ["row_reader", "run_row"]


def row_reader(row: Any, ctx: dict[str, Any], group: str) -> Reader:
    """A reader of the row's outputs and signals that counts each prediction of a PredictionBatch."""
    topics = [row.outputs] + ([row.signals] if row.signals else [])
    codec = ctx["codec"]
    return Reader(ctx["broker"], topics, PARTITIONS, keep_values=set(topics), group=group,
                  explode=lambda value: [r for _, r in unbatch(*codec.decode(value))],  # PredictionBatch: each one
                  explode_topics=frozenset({row.outputs}) if row.decode_outputs else frozenset())


def run_row(name: str, ctx: dict[str, Any], cfg: Config, log) -> dict[str, Any]:
    broker, universe, encoder = ctx["broker"], ctx["universe"], ctx["encoder"]
    result: dict[str, Any] = {"row": name, "label": LABELS[name], "complete": False}
    row = start_row(name, broker, ctx["run_id"], ctx["workdir"], ctx["model_dir"], ctx["threshold"], ctx["worker_env"])
    reader = row_reader(row, ctx, group=f"bp{ctx['run_id']}-{name}-reader")
    feeder = Feeder(broker)
    feed = Feed(feeder, row, universe, encoder)
    measure = Measure(row, reader, ctx["codec"], ctx["threshold"])
    try:
        t0 = time.monotonic()
        if row.worker is not None:
            row.worker.wait_ready(120)
        # -- warm-up (only its rate reported); Candleflow rows are warmed with CandleBatch messages either way
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
        ok, records = measure.wait(len(pairs), timeout_for(len(pairs)) + 60)
        # Its rate too: a row too slow to finish the warm-up still has a figure (the one (c) Quix gets here).
        result["warmup"] = {"candles": len(pairs), "outputs": len(records), "complete": ok,
                            "sustained_per_s": rounded(sustained_rate(records), 0)}
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
            ok, records = measure.wait(len(pairs), timeout_for(len(pairs)))
            if not ok:
                raise RuntimeError(f"{name}: burst outputs incomplete")
            last_out = max(r[0] for r in records) * 1000
            bursts.append(last_out - feeder.last_ts_ms)
            burst_est.append(len(pairs) / max(1e-3, (last_out - first_ms) / 1000))
            burst_lat += latencies(row, records, ctx["codec"])
        result["burst"] = {"symbols": BURST_SYMBOLS, "bursts": cfg.bursts, "messages_per_burst": len(msgs),
                           "last_out_ms": rounded(pct(bursts, 50)), "last_out_ms_worst": rounded(max(bursts)),
                           "p50_ms": rounded(pct(burst_lat, 50)), "p99_ms": rounded(pct(burst_lat, 99))}
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
        lat = latencies(row, records, ctx["codec"])
        sig = measure.signal_latencies(sig_since)
        out_span = (max(r[0] for r in records) - min(r[0] for r in records)) if len(records) > 1 else 0.0
        result["steady"] = {"candles": n, "offered_per_s": round(n / feed_s, 1), "complete": ok,
                            "kept_up": bool(ok and out_span > 0 and len(records) / out_span >= 0.95 * STEADY_RATE * min(1.0, n / STEADY_RATE / feed_s)),
                            "p50_ms": rounded(pct(lat, 50)), "p99_ms": rounded(pct(lat, 99)), "max_ms": rounded(max(lat) if lat else None),
                            "signals": len(sig), "signal_p50_ms": rounded(pct(sig, 50)), "signal_p99_ms": rounded(pct(sig, 99))}
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
        ok, records = measure.wait(n, timeout_for(n))
        cpu1, broker_cpu1 = proc_cpu_s(row.pid), proc_cpu_s(ctx["broker_pid"])
        if row.worker is not None:  # its last checkpoint (state, changelogs) follows the outputs within an interval
            time.sleep(2 * float(ctx["worker_env"].get("CANDLEFLOW_CHECKPOINT_INTERVAL_S", 1.0)))
        records1 = produced_records(broker, ctx["run_id"], name, row.source)
        last_out_s = max((r[0] for r in records), default=None)
        lat = latencies(row, records, ctx["codec"])
        result["max"] = {"candles": n, "messages": len(msgs), "complete": ok,
                         "feed_per_s": round(n / max(feed_s, 1e-6)),
                         "sustained_per_s": rounded(sustained_rate(records), 0), "overall_per_s": rounded(n / max(1e-6, last_out_s - t_start), 0) if last_out_s is not None else None,
                         "p50_ms": rounded(pct(lat, 50)), "p99_ms": rounded(pct(lat, 99)),
                         "cpu_us_per_candle": rounded((cpu1 - cpu0) / n * 1e6) if cpu0 is not None and cpu1 is not None else None,
                         "records_per_candle": rounded((records1 - records0) / n, 2),
                         "broker_cpu_us_per_candle": rounded((broker_cpu1 - broker_cpu0) / n * 1e6) if broker_cpu0 is not None else None}
        log(f"  {name}: max {result['max']}")
        result["peak_rss_mb"] = rounded(proc_peak_rss_mb(row.pid), 0)
        result["complete"] = ok
    except Exception as exc:  # keep the other rows: report what failed
        result["error"] = str(exc)
        log(f"  {name}: FAILED: {exc}")
        if row.pid:
            result.setdefault("peak_rss_mb", rounded(proc_peak_rss_mb(row.pid), 0))
    finally:
        row.stop()
        reader.stop()
        delete_topics(broker, f"bp{ctx['run_id']}-{name}")
    return result
