"""Run one Candleflow worker: load the model, start the Faust app, serve until stopped."""

from __future__ import annotations

import faust

from streams.app import create_app
from core.errors import ConfigError
from core.gc_policy import settle
from kafka_io.security import confluent_security
from core.settings import Settings
from core.topics import ensure_topics, topic_specs

__all__ = ["run_worker"]


def run_worker(settings: Settings) -> None:
    """Blocks until the worker is stopped (SIGINT/SIGTERM). Raises ConfigError when it cannot start."""
    from models.loading import load_model

    model = load_model(settings.model_dir)  # fails fast, before joining the group
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"CANDLEFLOW_DATA_DIR {settings.data_dir} cannot be created: {exc}") from None
    ensure_topics(settings.broker, topic_specs(settings), client_config=confluent_security(settings))
    pipeline = create_app(settings)
    pipeline.model = model
    worker = faust.Worker(pipeline.app, loglevel=settings.log_level.upper())
    settle()  # the imports, the model and the app, out of the collector's scans (core/gc_policy.py)
    worker.execute_from_commandline()
