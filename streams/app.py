"""The Faust app and everything it declares: topics and tables, in a :class:`Pipeline`.

``create_app`` builds one app per settings object (tests and replays run several side by side,
each with its own app id), so nothing here lives at module level. The agents (``agents/``) and the web
views (``candleflow/web/``) are attached by the worker (``candleflow/worker.py``): the agents import this
module, so it imports none of them. What they set on the pipeline later (the model, the checkpoint, the
pattern store...) is ``Pipeline.worker`` (:class:`streams.worker_state.WorkerState`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from collections.abc import Callable

import faust

from schemas import AvroCodec, MultiCodec, register_faust_codecs, schema_store
from core.best_effort import BestEffort
from streams.faust_transport import CandleflowApp
from kafka_io.security import faust_credentials
from streams.partitioning import KeyPartitioner
from streams.recent_signals import RecentSignals
from core.settings import Settings
from core.topics import OUTPUT_TOPICS
from streams.learning_history import LearningHistory
from streams.serving_chain import ServingChain
from streams.stats import PipelineStats
from streams.worker_state import WorkerState

__all__ = ["Pipeline", "create_app"]

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """The app with its declared topics and tables, passed to the agents and views that use them.

    Everything but ``worker`` is declared once by :func:`create_app` and never reassigned (the objects
    may change inside: statistics count, tables fill). What agents and the worker set later (the model,
    the checkpoint, the pattern store...) lives in ``worker``, a :class:`streams.worker_state.WorkerState`,
    each field with its owner.
    """

    settings: Settings
    app: CandleflowApp
    candles: faust.TopicT  # every candles.<tf> topic, consumed by one agent
    timeframe_of: dict[str, str]  # candle topic name -> its timeframe
    predictions: faust.TopicT
    signals: faust.TopicT
    dead_letters: faust.TopicT
    outcomes: faust.TopicT
    retrain_requests: faust.TopicT
    threshold_changes: faust.TopicT  # adaptive signal threshold changes (learning/threshold.py)
    series: faust.Table  # series_key bytes -> streams.series.SeriesState.to_bytes() (features, window, labeller)
    recent_signals: RecentSignals  # the last signals per symbol (tables signal-heads and signal-ring)
    aggregators: faust.Table  # state_key bytes -> CandleAggregator.to_bytes()
    learners: faust.Table  # b"partition-N" -> learning.learner.OutcomeLearner.to_bytes()
    candle_codec: MultiCodec
    codecs: dict[str, AvroCodec]  # record name -> codec, for the outputs the candle agent encodes itself
    partition_of: Callable[[str], int]  # symbol -> the partition of its key on the output topics (KeyPartitioner)
    stats: PipelineStats
    learning_history: LearningHistory = field(default_factory=LearningHistory)  # the dashboard's loop chart
    # Every call to the pattern store goes through it: an outage or a slow store never holds up a signal.
    pattern_calls: BestEffort = field(default_factory=lambda: BestEffort("pattern store"))
    # The latency budget's model chain of this worker: full model, else its distilled student (per process).
    serving_chain: ServingChain = field(default_factory=ServingChain)
    worker: WorkerState = field(default_factory=WorkerState)  # set after creation, by its owners


# Per table and partition, each its own RocksDB database. Faust's defaults (64 MB x 3 memtables and a
# 2 GB block cache per database) are sized for one big table; with 8 tables x N partitions they let a
# worker's memory climb for minutes before memtables flush (BENCHMARKS.md, Soak). These values are small
# because every value here is small; the memory store ignores them. The block cache is 2 MB: the candle
# agent keeps its series live and reads a table only when partitions move, so caching blocks buys nothing
# on the hot path and 5 tables x 4 partitions x 16 MB would be up to 320 MB of a worker's memory.
PRODUCER_BATCH_BYTES = 1 << 20

ROCKSDB_OPTIONS = {"write_buffer_size": 4 << 20, "max_write_buffer_number": 2, "block_cache_size": 2 << 20}

# The largest request body the web server takes (aiohttp's client_max_size); the views check it first
# (candleflow/web/errors.py) to answer with a JSON error.
MAX_BODY_BYTES = 1_048_576


def faust_app(settings: Settings) -> CandleflowApp:
    """A Faust app configured for Candleflow (client timeouts per docs/platform.md: ~3 s per group join)."""
    return CandleflowApp(
        settings.app_id,
        fetch_max_wait_ms=settings.broker.fetch_max_wait_ms,
        broker=f"kafka://{settings.broker.bootstrap}",
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,  # the changelogs too
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.5,
        broker_rebalance_timeout=10.0,
        broker_commit_interval=1.0,
        producer_linger=settings.broker.producer_linger_s,
        # Batch records (PredictionBatch, OutcomeBatch) are up to ~300 KB. With Faust's 16 KB default, every
        # one of them fills a producer batch, and the next send to that partition waits a whole linger.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        producer_max_request_size=4 * PRODUCER_BATCH_BYTES,
        web_enabled=True,
        web_bind=settings.web.host,
        web_host=settings.web.host,
        web_port=settings.web.port,
        canonical_url=settings.web.url,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_tables_enabled=False,
        web_application_options={"client_max_size": MAX_BODY_BYTES},
    )


def create_app(settings: Settings) -> Pipeline:
    """Build the app and declare its topics and tables (the worker attaches the agents and web views)."""
    store = schema_store(settings)
    register_faust_codecs(store)
    app = faust_app(settings)

    def table(name: str, json: bool = False) -> faust.Table:
        return app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=None if json else bytes,
                         options=ROCKSDB_OPTIONS)

    def output_topic(name: str) -> faust.TopicT:
        return app.topic(settings.topic(name), key_serializer="raw", value_serializer=OUTPUT_TOPICS[name].serializer)

    pipeline = Pipeline(
        settings=settings,
        app=app,
        # Raw bytes in: the agent decodes itself, so undecodable messages reach dead-letters with their offset.
        candles=app.topic(*[settings.candle_topic(tf) for tf in settings.timeframes],
                          key_serializer="raw", value_serializer="raw"),
        timeframe_of={settings.candle_topic(tf): tf for tf in settings.timeframes},
        predictions=output_topic("predictions"),
        signals=output_topic("signals"),
        dead_letters=output_topic("dead-letters"),
        outcomes=output_topic("outcomes"),
        retrain_requests=output_topic("retrain-requests"),
        threshold_changes=output_topic("signal-thresholds"),
        # Faust picks a table's serializers from its key/value types: bytes -> raw, otherwise JSON.
        # Feature states are stored as their own compact bytes (FeatureState.to_bytes).
        series=table("series"),
        recent_signals=RecentSignals(table("signal-heads", json=True), table("signal-ring", json=True)),
        aggregators=table("aggregators"),
        learners=table("learners"),
        candle_codec=MultiCodec(["Candle", "CandleBatch"], store),
        codecs={name: AvroCodec(name, store) for name in ("PredictionBatch", "Signal", "OutcomeBatch", "DeadLetter")},
        partition_of=KeyPartitioner(settings.partitions),
        stats=PipelineStats(),
        serving_chain=ServingChain(settings.score_budget_ms),
    )
    if not settings.state_key:
        log.warning("CANDLEFLOW_STATE_KEY is not set: learner state is sealed with a key derived from the app id, "
                    "which keeps corrupt values out but not a forger who knows it; set a secret for production")
    return pipeline
