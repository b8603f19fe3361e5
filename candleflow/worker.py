"""Run one Candleflow worker: load the model, build the Faust app with its agents and web views, serve
until stopped. The one place the runtime (``streams/``) and the agents (``agents/``) are put together."""

from __future__ import annotations

import faust

from agents.attach import attach_agents
from streams.app import Pipeline, create_app
from candleflow.web import attach_web_views
from core.errors import ConfigError
from core.gc_policy import settle
from core.malloc_policy import tune_malloc
from kafka_io.security import confluent_security
from core.settings import Settings
from core.topics import ensure_topics, topic_specs

__all__ = ["create_worker_app", "run_worker"]


def create_worker_app(settings: Settings) -> Pipeline:
    """The app with its topics and tables (``streams/app.py``), the agents and the web views attached."""
    pipeline = create_app(settings)
    attach_agents(pipeline)
    attach_web_views(pipeline)
    return pipeline


def run_worker(settings: Settings) -> None:
    """Blocks until the worker is stopped (SIGINT/SIGTERM). Raises ConfigError when it cannot start."""
    from models.loading import load_model, serving_threads

    # Before the model and the first batch allocate (core/malloc_policy.py).
    tune_malloc(settings.malloc_arena_max, settings.malloc_mmap_threshold_kb * 1024)
    serving_threads()
    model = load_model(settings.model_dir, tree_runtime=settings.tree_runtime)  # fails fast, before joining the group
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"CANDLEFLOW_DATA_DIR {settings.data_dir} cannot be created: {exc}") from None
    ensure_topics(settings.broker.bootstrap, topic_specs(settings), client_config=confluent_security(settings))
    pipeline = create_worker_app(settings)
    pipeline.worker.model = model
    worker = faust.Worker(pipeline.app, loglevel=settings.log_level.upper())
    settle()  # the imports, the model and the app, out of the collector's scans (core/gc_policy.py)
    worker.execute_from_commandline()
