"""Every agent of a worker attached to its pipeline (``streams/app.py`` declares the topics and tables; the
worker, :mod:`candleflow.worker`, calls this, then attaches the web views)."""

from __future__ import annotations

from streams.app import Pipeline

__all__ = ["attach_agents"]


def attach_agents(pipeline: Pipeline) -> None:
    """The checkpoint (write-behind state, ``pipeline.worker.checkpoint``) and the agents the settings turn on,
    in this order."""
    from agents.aggregation import attach_aggregation_agent
    from agents.candles import attach_candle_agent
    from agents.checkpoint import Checkpoint
    from agents.model_events import attach_model_reloader
    from agents.outcomes import attach_outcome_agents
    from agents.recovery import attach_recovery_watch

    settings = pipeline.settings
    pipeline.worker.checkpoint = Checkpoint(pipeline.app, pipeline.series, pipeline.learners,
                                            settings.checkpoint_interval_s, kill_at=settings.fault_kill_at,
                                            recent_signals=pipeline.recent_signals, signing_key=settings.signing_key,
                                            max_live_series=settings.max_live_series)
    attach_recovery_watch(pipeline.app, settings.recovery_stall_s, stall_first_recovery=settings.fault_stall_recovery)
    attach_candle_agent(pipeline)
    attach_aggregation_agent(pipeline)
    if settings.outcome_loop:
        attach_outcome_agents(pipeline)
    if settings.patterns.enabled:
        from agents.patterns import attach_pattern_store

        attach_pattern_store(pipeline)
    if settings.sinks:
        from agents.sinks import attach_sink_agents

        attach_sink_agents(pipeline)
    attach_model_reloader(pipeline)
