"""Health, readiness, statistics and Prometheus metrics of a worker."""

from __future__ import annotations

import time

from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from streams.client_internals import last_read_offset

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_health_views", "worker_status", "consumer_lag", "prometheus_text"]


def consumer_lag(app: Any, topics: set[str]) -> int | None:
    """Messages not yet read on the assigned partitions of ``topics`` (None before the first fetch)."""
    consumer = app.consumer
    lag, known = 0, False
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        high = consumer.highwater(tp)
        if high is None:
            continue
        read = last_read_offset(consumer, tp)  # the last offset the agent has seen
        lag += max(0, high - (read + 1 if read is not None else 0))
        known = True
    return lag if known else None


def _providers(model) -> dict[str, str]:
    """Where each member of the serving model runs (ONNX Runtime's provider, the Mamba step's device): a
    GPU fallen back to the CPU shows here.

    >>> class Model:
    ...     name, provider = "lgbm-h1", "CPUExecutionProvider"
    >>> _providers(Model())
    {'lgbm-h1': 'CPUExecutionProvider'}
    """
    members = getattr(model, "members", None)
    if members is None:
        return {getattr(model, "name", "model"): getattr(model, "provider", "n/a")}
    return {m.name: getattr(m.model, "provider", "n/a") for m in members}


def _jsonable(value: Any) -> Any:
    """Mappings with non-string keys (e.g. (topic, partition)) as JSON can carry them.

    >>> _jsonable({"safe": {("t", 1): 5}})
    {'safe': {'t[1]': 5}}
    """
    if isinstance(value, dict):
        return {(f"{k[0]}[{k[1]}]" if isinstance(k, tuple) else str(k)): _jsonable(v) for k, v in value.items()}
    return value


def worker_status(pipeline: Pipeline) -> dict[str, Any]:
    app = pipeline.app
    assigned = len(app.consumer.assignment()) if app.consumer else 0
    recovered = bool(getattr(app.tables, "recovery", None) is None or app.tables.recovery.completed.is_set())
    model = pipeline.worker.model
    ready = bool(assigned) and not app.rebalancing and recovered and model is not None
    return {"status": "ok", "ready": ready, "assigned_partitions": assigned, "tables_recovered": recovered,
            "model_version": getattr(model, "version", None),
            "model_provider": getattr(model, "provider", None),
            "stats": pipeline.stats.snapshot()}


def prometheus_text(pipeline: Pipeline, lag: int | None) -> bytes:
    """The worker's figures in Prometheus' text format (a registry of its own per worker)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    stats, registry = pipeline.stats, CollectorRegistry()
    for name in ("candles", "predictions", "signals", "dead_letters"):
        Counter(f"candleflow_{name}", f"{name.replace('_', ' ')} processed", registry=registry).inc(getattr(stats, name))
    Gauge("candleflow_candles_per_second", "candles per second over the last 10 s", registry=registry).set(stats.candle_rate.rate())
    Gauge("candleflow_consumer_lag", "candle messages not yet read", registry=registry).set(lag if lag is not None else float("nan"))
    served = Counter("candleflow_served_candles", "candles scored, by the full model or its distilled student "
                     "(over the latency budget)", ["by"], registry=registry)
    for by, n in pipeline.serving_chain.snapshot()["served"].items():
        served.labels(by).inc(n)
    quantiles = Gauge("candleflow_latency_ms", "latency percentiles in milliseconds", ["kind", "quantile"], registry=registry)
    for kind, window in (("inference", stats.inference_ms), ("end_to_end", stats.end_to_end_ms)):
        summary = window.summary()
        for q in ("p50", "p99"):
            quantiles.labels(kind, q).set(summary[q] if summary[q] is not None else float("nan"))
    model = pipeline.worker.model
    model_stats = (model.stats() if model is not None else None) or {"members": {}}
    members = Gauge("candleflow_model_latency_us", "inference latency per model member, microseconds",
                    ["member", "version", "provider", "quantile"], registry=registry)
    for name, m in model_stats["members"].items():
        for q in ("p50", "p99"):
            members.labels(name, m.get("version", ""), m.get("provider", ""), q).set(m.get(f"{q}_us", float("nan")))
    return generate_latest(registry)


def attach_health_views(pipeline: Pipeline) -> None:
    app = pipeline.app
    candle_topics = set(pipeline.timeframe_of)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json(worker_status(pipeline))

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            status = worker_status(pipeline)
            shown = {k: status[k] for k in ("ready", "assigned_partitions", "tables_recovered", "model_version")}
            # A sink behind (its database down) does not make the worker unready: predictions flow on.
            sink_stats = pipeline.worker.sink_stats
            shown["sinks_healthy"] = {name: bool(stats().get("healthy")) for name, stats in sink_stats.items()}
            return self.json(shown, status=200 if status["ready"] else 503)

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            worker = pipeline.worker
            sinks = {name: _jsonable(stats()) for name, stats in worker.sink_stats.items()}
            feed = worker.signal_feed.stats() if worker.signal_feed is not None else None
            live = len(worker.checkpoint.series) if worker.checkpoint is not None else None
            return self.json({**pipeline.stats.snapshot(), "consumer_lag": consumer_lag(app, candle_topics), "sinks": sinks,
                              "signal_stream": feed, "live_series": live, "providers": _providers(worker.model),
                              "patterns": pipeline.pattern_calls.stats() if pipeline.settings.patterns.enabled else None,
                              # candles served by the full model and by its student, the budget, the estimate
                              "serving": pipeline.serving_chain.snapshot()})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = prometheus_text(pipeline, consumer_lag(app, candle_topics))
            return self.bytes(body, content_type="text/plain; version=0.0.4")

    @app.timer(1.0)
    async def record_history() -> None:
        pipeline.stats.tick()

    @app.timer(10.0)
    async def record_learning() -> None:
        worker = pipeline.worker
        checkpoint = worker.checkpoint
        if checkpoint is None:
            return
        async with checkpoint.batch_lock:  # a batch may be teaching the same learners in a thread
            learners = [dict.__getitem__(checkpoint.learners, key) for key in list(dict.keys(checkpoint.learners))]
            pipeline.learning_history.sample(time.time(), learners, (
                getattr(worker.model, "version", None), worker.candidate[0].version if worker.candidate else None))
