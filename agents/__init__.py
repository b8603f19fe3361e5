"""The Faust agents: thin, each attaching one concern to the app (``streams/app.py`` builds the pipeline;
:func:`agents.attach.attach_agents` attaches them all, called by the worker, ``candleflow/worker.py``).
They import ``streams/`` (the app, the step, the ingest helpers); nothing in ``streams/`` imports them, not even
for a type annotation.

- :mod:`agents.candles`: candles in; predictions, signals, outcomes and dead letters out.
- :mod:`agents.checkpoint`: write-behind state, consistent with the committed offsets.
- :mod:`agents.outcomes`, :mod:`agents.patterns`, :mod:`agents.aggregation`, :mod:`agents.model_events`:
  trade results and retrain requests, the pattern consensus, 1m -> longer candles, hot reload.
- :mod:`agents.sinks`, :mod:`agents.sink_consumer`: PostgreSQL and Redis, in consumer groups of their own.
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "attach_agents": "agents.attach",
    "attach_candle_agent": "agents.candles", "Checkpoint": "agents.checkpoint", "attach_outcome_agents": "agents.outcomes",
    "attach_pattern_store": "agents.patterns", "attach_aggregation_agent": "agents.aggregation",
    "attach_model_reloader": "agents.model_events", "attach_sink_agents": "agents.sinks", "SinkConsumer": "agents.sink_consumer",
}, globals())
