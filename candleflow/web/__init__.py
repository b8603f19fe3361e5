"""Faust web views of a worker, bound to 127.0.0.1 unless configured otherwise.

| view | what |
| --- | --- |
| ``GET /health`` | liveness and counters; ``GET /ready``: 200 only once partitions are assigned, tables recovered and the model loaded |
| ``GET /stats`` | candles/s, consumer lag, inference and end-to-end latency p50/p99, dead letters; ``serving``: candles served by the full model and by its distilled student, the latency budget, the cost estimate |
| ``GET /metrics`` | the same in Prometheus text format |
| ``GET /signals/latest`` | the latest signal of every symbol this worker owns |
| ``GET /signals/{symbol}`` | recent signals of one symbol, from the worker that owns it |
| ``GET /signals/stream`` | every new signal as server-sent events |
| ``GET /features/{symbol}/{timeframe}`` | the symbol's latest features, from the worker that owns it |
| ``GET /models`` | the model in use and its distilled student; accuracy per version and horizon; the online model; the latency budget's chain |
| ``POST /predict`` | score candles given in the request |
| ``GET /`` | the dashboard |
| ``GET /schemas/ids/{id}``, ``GET /subjects/...`` | the Confluent Schema Registry read API for the schemas it writes (:mod:`.schema_registry`) |
| ``POST /admin/{promote,candidate,rollback,retrain}`` | admin actions; need ``Authorization: Bearer $CANDLEFLOW_ADMIN_TOKEN`` |

Errors are JSON ``{"error": "..."}`` with the right status code; request bodies are limited in size.
"""

from candleflow.web.admin import attach_admin_views
from candleflow.web.dashboard import attach_dashboard
from candleflow.web.features import attach_feature_views
from candleflow.web.health import attach_health_views
from candleflow.web.models import attach_model_views
from candleflow.web.predict import attach_predict_view
from candleflow.web.schema_registry import attach_schema_registry_views
from candleflow.web.signals import attach_signal_views

__all__ = ["attach_web_views"]


def attach_web_views(pipeline) -> None:
    attach_health_views(pipeline)
    attach_signal_views(pipeline)
    attach_feature_views(pipeline)
    attach_predict_view(pipeline)
    attach_model_views(pipeline)
    attach_admin_views(pipeline)
    attach_schema_registry_views(pipeline)
    attach_dashboard(pipeline)
