"""The topics of the pipeline, declared once, and their creation on the broker.

Topics are created explicitly with the app's partition count: a broker that auto-creates topics
may choose another count, and Faust refuses to run on mismatched partitions.

>>> from core.settings import Settings
>>> [t.name for t in topic_specs(Settings(timeframes=("5m",)))]
['candleflow.candles.5m', 'candleflow.predictions', 'candleflow.signals', 'candleflow.outcomes', 'candleflow.retrain-requests', 'candleflow.signal-thresholds', 'candleflow.model-events', 'candleflow.dead-letters']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.settings import Settings

__all__ = ["LABELS_ONLY_HEADER", "OutputTopic", "TopicSpec", "topic_specs", "ensure_topics", "labels_only", "OUTPUT_TOPICS"]


@dataclass(frozen=True)
class OutputTopic:
    """What a topic carries: the Avro record written on it (None: JSON values), Faust's value serializer
    for it, and its topic config."""

    record: str | None
    serializer: str
    config: dict[str, str] = field(default_factory=dict)


# Every topic besides the candle topics, declared here only: their creation (topic_specs), the Faust topic
# objects (streams/app.py) and the registry's topic subjects (schemas/registry_api.py) read this.
OUTPUT_TOPICS: dict[str, OutputTopic] = {
    "predictions": OutputTopic("PredictionBatch", "avro-prediction"),
    "signals": OutputTopic("Signal", "avro-signal"),
    "outcomes": OutputTopic("Outcome", "avro-outcome"),  # OutcomeBatch messages too
    "retrain-requests": OutputTopic(None, "json"),
    "signal-thresholds": OutputTopic(None, "json"),  # adaptive threshold changes, keyed by model version
    # Compacted: the latest event per model name is its state.
    "model-events": OutputTopic(None, "json", {"cleanup.policy": "compact"}),
    "dead-letters": OutputTopic("DeadLetter", "avro-dead-letter"),
}

# The header on a worker's OutcomeBatch records: every outcome in the record is a LABEL, learned where it was
# made, so the trades agent (agents/outcomes.py) passes it by undecoded (at full rate the worker writes about one
# label a candle; decoding them all to find no trade cost ~5 % of its CPU). A record without it is decoded and
# its TRADE outcomes learned, whichever form a trading engine sends.
LABELS_ONLY_HEADER = ("candleflow-outcome-sources", b"LABEL")


def labels_only(headers: Any) -> bool:
    """Whether a message with ``headers`` (Kafka's (key, value) pairs, or a mapping) says it holds labels only.

    >>> labels_only([LABELS_ONLY_HEADER]), labels_only(None), labels_only({"candleflow-outcome-sources": b"TRADE"})
    (True, False, False)
    """
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return any(tuple(pair) == LABELS_ONLY_HEADER for pair in pairs)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    replication: int = 1


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic Candleflow reads or writes (Faust's own changelog topics excluded)."""
    n, rf = settings.partitions, settings.replication_factor
    specs = [TopicSpec(settings.candle_topic(tf), n, replication=rf) for tf in settings.timeframes]
    specs += [TopicSpec(settings.topic(name), n, dict(out.config), rf) for name, out in OUTPUT_TOPICS.items()]
    return specs


def ensure_topics(bootstrap: str, specs: list[TopicSpec], timeout_s: float = 30.0,
                  client_config: dict[str, str] | None = None) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Existing topics are left alone.
    ``client_config``: extra confluent-kafka settings (SASL/TLS: :func:`kafka_io.security.confluent_security`)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, **(client_config or {})})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=s.config) for s in missing],
        operation_timeout=timeout_s, request_timeout=timeout_s)
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout_s)
            created.append(name)
        except Exception as exc:  # a concurrent creator won the race: fine, anything else is not
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created
