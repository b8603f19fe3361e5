"""One frozen, typed settings object, read once from the environment (prefix ``CANDLEFLOW_``).

Everything that varies between a laptop, CI and production lives here and is passed down;
nothing else reads ``os.environ``. Its sections, ``settings.broker`` (:class:`BrokerSettings`),
``settings.web`` (:class:`WebSettings`), ``settings.storage`` (:class:`StorageSettings`), ``settings.retrain``
(:class:`RetrainConfig`) and ``settings.patterns`` (:class:`PatternSettings`), are read with it by the one
parser (:mod:`core.env_parser`) from the same mapping, each under the variables it always had;
secrets (tokens, keys, passwords, URLs with a password) are :class:`Secret`.

>>> s = Settings.from_env({"CANDLEFLOW_BROKER": "kafka:9092", "CANDLEFLOW_SIGNAL_THRESHOLD": "0.2"})
>>> s.broker.bootstrap, s.signal_threshold, s.web.host
('kafka:9092', 0.2, '127.0.0.1')
>>> s.topic("signals")
'candleflow.signals'
>>> Settings.from_env({"CANDLEFLOW_PARTITIONS": "zero"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_PARTITIONS must be an integer, got 'zero'

One mapping, every section; a bad value in a section is the same one-line error:

>>> s = Settings.from_env({"CANDLEFLOW_PARTITIONS": "8", "CANDLEFLOW_SINK_BATCH_SIZE": "250",
...                        "CANDLEFLOW_RETRAIN_WINDOW": "3000"})
>>> s.partitions, s.storage.sink_batch_size, s.retrain.window
(8, 250, 3000)
>>> Settings.from_env({"CANDLEFLOW_WEB_PORT": "0"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_WEB_PORT must be a TCP port, got 0
>>> Settings.from_env({"CANDLEFLOW_RETRAIN_SHARE": "2"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_RETRAIN_SHARE must be in (0, 1], got 2.0
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from core.candle import TIMEFRAME_MS
from core.env_parser import PREFIX, Secret, from_env, to_env
from core.errors import ConfigError
from core.settings_network import BrokerSettings, WebSettings
from core.settings_sections import PatternSettings, RetrainConfig, StorageSettings

__all__ = ["BrokerSettings", "MAX_MESSAGE_BYTES", "PREFIX", "PatternSettings", "RetrainConfig", "Settings", "Secret",
           "StorageSettings", "WebSettings", "from_env", "to_env"]

MAX_MESSAGE_BYTES = 1 << 20  # a candle message larger than this is refused undecoded (CANDLEFLOW_MAX_MESSAGE_BYTES)
# The test-only crash hook: kill the worker right after the Nth checkpoint phase of that name (agents/checkpoint.py).
_FAULT_KILL_AT = r"(after-outputs|after-learners|after-state):[1-9][0-9]*"


@dataclass(frozen=True)
class Settings:
    """Candleflow's configuration. Every root field can be set as ``CANDLEFLOW_<FIELD>`` in the environment;
    each section says its own variables. A section may be given as a mapping of some of its fields: here
    (over the section's defaults), to :meth:`replace` (over its current section) and to :meth:`from_env`
    (over what the environment says of it).

    >>> Settings(broker={"bootstrap": "kafka:9092"}, web={"port": 7000}).web
    WebSettings(host='127.0.0.1', port=7000, advertised_host='', sse_max_clients=64)
    """

    app_id: str = "candleflow"
    topic_prefix: str = "candleflow"
    partitions: int = 4
    replication_factor: int = 1  # of every topic the worker creates, changelogs included: 3 on a real cluster
    timeframes: tuple[str, ...] = ("1m", "5m")
    aggregate_to: tuple[str, ...] = ()  # e.g. 5m,15m,1h: built from candles.1m by the aggregation agent
    model_dir: Path = Path("var/models/candleflow")
    data_dir: Path = Path("var/data")
    store: str = "rocksdb://"
    schema_registry_url: Secret = Secret("")  # may carry credentials (https://user:pass@host): never shown
    signal_threshold: float = 0.3
    # Series kept live (decoded, in the feature engine) between batches; beyond it the least recently used
    # ones that are written are dropped after a checkpoint and read back from the table when they return.
    max_live_series: int = 4_000
    max_message_bytes: int = MAX_MESSAGE_BYTES  # larger candle messages are dead-lettered undecoded
    # A candle opening later than this worker's clock plus this is dead-lettered (it would poison its series).
    max_clock_skew_s: float = 300.0
    batch_max: int = 500
    batch_within_s: float = 0.005
    # How often the candle agent's state is made durable behind its outputs (agents/checkpoint.py): the
    # longest a crash makes the group redo, and the staleness of /features; not on the output path.
    checkpoint_interval_s: float = 1.0
    # Failure tests only: "after-outputs:N", "after-learners:N" or "after-state:N" SIGKILLs the worker inside
    # its N-th checkpoint, at that moment (agents/checkpoint.py). Empty: never.
    fault_kill_at: str = ""
    # Table recovery that reads nothing for this long reads its changelogs again, the next time rejoins the
    # group, and after that the worker stops with an error for its supervisor to start a fresh one
    # (agents/recovery.py).
    recovery_stall_s: float = 20.0
    # Failure tests only: the first table recovery with records to read gets none of them for this many
    # resumes of its changelog partitions (1: reading again undoes it, 2: the rejoin does). 0: never.
    fault_stall_recovery: int = 0
    # glibc's allocator (core/malloc_policy.py): at most this many arenas (0: glibc's default, 8 per core) and,
    # when set, blocks from this size (KiB) mapped on their own and returned when freed: less peak memory for
    # more CPU per candle (off by default; figures in the module).
    malloc_arena_max: int = 2
    malloc_mmap_threshold_kb: int = 0
    outcome_loop: bool = True  # label predictions and learn from outcomes in this worker
    # Latency budget of a batch's scoring, in ms: a batch the full model is estimated to score over it is
    # served by the model's distilled student (``<model>/student/``; streams/serving_chain.py). 0: off.
    score_budget_ms: float = 250.0
    # How the LightGBM horizon models run on CPU: "auto" compiles them to native code (lleaves, verified
    # against ONNX Runtime at load; models/compiled_trees.py) and falls back to ONNX Runtime where that
    # cannot be done; "onnx" always runs ONNX Runtime. A GPU provider always runs ONNX Runtime.
    tree_runtime: str = "auto"
    # The River online model's largest weight in the main horizon's P(up); its weight follows its recent
    # accuracy (streams/online_member.py), deterministic under replay. 0 leaves it out.
    online_weight: float = 0.5
    # Conservative mode: per model version the signal threshold rises (up to signal_threshold_max) while its
    # recent signals lose, and comes back as they recover (learning/threshold.py). Off by default for now:
    # with it and the online member both on, the pipeline benchmark's steady 1,000/s did not complete here.
    adaptive_threshold: bool = False
    signal_threshold_max: float = 0.6
    # What the adaptive threshold judges a signal by: its label (the candle h later: deterministic, what a
    # replay reproduces) or "trades", the P&L a trading engine reports on `outcomes` (live only).
    adaptive_threshold_source: str = "labels"
    # A candidate version: "shadow" scores every candle beside the active model, never traded, and the
    # promotion judge pairs their outcomes candle by candle; "split" serves it to its traffic share of symbols.
    ab_mode: str = "shadow"
    sinks: tuple[str, ...] = ()  # postgres, redis, candles (the candle topics into PostgreSQL); storage.config
    # Signs the learners' table values (learning/sealed.py): set one secret for all workers of a deployment.
    # Empty: a key derived from the app id, which keeps corrupt values out but not a forger who knows it.
    state_key: Secret = field(default=Secret(""), repr=False)
    log_level: str = "info"
    # Sections, read by the same parser from the same mapping, under their own variables
    # (core/settings_network.py, core/settings_sections.py).
    broker: BrokerSettings = field(default_factory=BrokerSettings, metadata={"section": BrokerSettings})  # CANDLEFLOW_BROKER_<FIELD>
    web: WebSettings = field(default_factory=WebSettings, metadata={"section": WebSettings})  # CANDLEFLOW_WEB_<FIELD>
    storage: StorageSettings = field(default_factory=StorageSettings, metadata={"section": StorageSettings})  # CANDLEFLOW_<FIELD>
    retrain: RetrainConfig = field(default_factory=RetrainConfig, metadata={"section": RetrainConfig})  # CANDLEFLOW_RETRAIN_<FIELD>
    patterns: PatternSettings = field(default_factory=PatternSettings, metadata={"section": PatternSettings})  # CANDLEFLOW_PATTERN_<FIELD>

    def __post_init__(self) -> None:
        for name, section in _SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, section(**value))

    def topic(self, name: str) -> str:
        """Full topic name under the configured prefix."""
        return f"{self.topic_prefix}.{name}" if self.topic_prefix else name

    def latest_open_time(self, now_s: float | None = None) -> int:
        """The latest candle open time (epoch ms) accepted now: this clock plus ``max_clock_skew_s``."""
        return int(((time.time() if now_s is None else now_s) + self.max_clock_skew_s) * 1000)

    @property
    def signing_key(self) -> bytes:
        """The key the learners' state is sealed with (``state_key``, or one derived from ``app_id``)."""
        import hashlib

        secret = str(self.state_key) if self.state_key else f"candleflow-unkeyed|{self.app_id}"
        return hashlib.sha256(secret.encode()).digest()

    def candle_topic(self, timeframe: str) -> str:
        return self.topic(f"candles.{timeframe}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read settings from ``env`` (default: ``os.environ``); ``overrides`` win over both."""
        return from_env(cls, env, overrides)

    def replace(self, **changes: Any) -> "Settings":
        """A validated copy with ``changes``; a section given as a mapping is merged into this one's section.

        >>> s = Settings(web={"host": "0.0.0.0"}).replace(web={"port": 7000}, partitions=8)
        >>> s.web.host, s.web.port, s.partitions
        ('0.0.0.0', 7000, 8)
        >>> s.replace(broker={"fetch_max_wait_ms": -1})
        Traceback (most recent call last):
        ...
        core.errors.ConfigError: CANDLEFLOW_FETCH_MAX_WAIT_MS must be within 0..10000, got -1
        """
        for name in _SECTIONS.keys() & changes.keys():
            if isinstance(changes[name], Mapping):
                changes[name] = dataclasses.replace(getattr(self, name), **changes[name])
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        for name in _SECTIONS:
            getattr(self, name).validate()
        if self.partitions < 1:
            raise ConfigError(f"CANDLEFLOW_PARTITIONS must be at least 1, got {self.partitions}")
        if self.max_live_series < 1:
            raise ConfigError(f"CANDLEFLOW_MAX_LIVE_SERIES must be at least 1, got {self.max_live_series}")
        if self.replication_factor < 1:
            raise ConfigError(f"CANDLEFLOW_REPLICATION_FACTOR must be at least 1, got {self.replication_factor}")
        unknown = [tf for tf in self.timeframes if tf not in TIMEFRAME_MS]
        if unknown or not self.timeframes:
            raise ConfigError(f"CANDLEFLOW_TIMEFRAMES has unknown timeframes {unknown}; known: {', '.join(TIMEFRAME_MS)}")
        unknown_sinks = set(self.sinks) - {"postgres", "redis", "candles"}
        if unknown_sinks:
            raise ConfigError(f"CANDLEFLOW_SINKS knows postgres, redis and candles, not {sorted(unknown_sinks)}")
        if self.aggregate_to:
            bad = [tf for tf in self.aggregate_to if tf not in TIMEFRAME_MS or tf == "1m"]
            if bad:
                raise ConfigError(f"CANDLEFLOW_AGGREGATE_TO has timeframes that cannot be built from 1m: {bad}")
            if "1m" not in self.timeframes or not set(self.aggregate_to) <= set(self.timeframes):
                raise ConfigError("CANDLEFLOW_AGGREGATE_TO needs 1m and every target in CANDLEFLOW_TIMEFRAMES")
        if self.ab_mode not in ("shadow", "split"):
            raise ConfigError(f"CANDLEFLOW_AB_MODE must be shadow or split, got {self.ab_mode!r}")
        if not 0.0 <= self.online_weight <= 1.0:
            raise ConfigError(f"CANDLEFLOW_ONLINE_WEIGHT must be within 0..1, got {self.online_weight}")
        if not 0.0 <= self.signal_threshold <= 1.0:
            raise ConfigError(f"CANDLEFLOW_SIGNAL_THRESHOLD must be within 0..1, got {self.signal_threshold}")
        if self.adaptive_threshold and not self.signal_threshold <= self.signal_threshold_max <= 1.0:
            raise ConfigError(f"CANDLEFLOW_SIGNAL_THRESHOLD_MAX must be within CANDLEFLOW_SIGNAL_THRESHOLD "
                              f"({self.signal_threshold})..1, got {self.signal_threshold_max} (or CANDLEFLOW_ADAPTIVE_THRESHOLD=false)")
        if self.adaptive_threshold_source not in ("labels", "trades"):
            raise ConfigError(f"CANDLEFLOW_ADAPTIVE_THRESHOLD_SOURCE must be labels or trades, got {self.adaptive_threshold_source!r}")
        if not 0 <= self.max_clock_skew_s <= 86_400:
            raise ConfigError(f"CANDLEFLOW_MAX_CLOCK_SKEW_S must be within 0..86400, got {self.max_clock_skew_s}")
        if self.max_message_bytes < 1024:
            raise ConfigError(f"CANDLEFLOW_MAX_MESSAGE_BYTES must be at least 1024, got {self.max_message_bytes}")
        if not self.store.startswith(("rocksdb://", "memory://")):
            raise ConfigError(f"CANDLEFLOW_STORE must be rocksdb:// or memory://, got {self.store!r}")
        if self.batch_max < 1 or self.batch_within_s <= 0:
            raise ConfigError("CANDLEFLOW_BATCH_MAX must be >= 1 and CANDLEFLOW_BATCH_WITHIN_S > 0")
        if self.fault_kill_at and not re.fullmatch(_FAULT_KILL_AT, self.fault_kill_at):
            raise ConfigError("CANDLEFLOW_FAULT_KILL_AT must be after-outputs:N, after-learners:N or after-state:N, "
                              f"got {self.fault_kill_at!r}")
        if not 0 <= self.score_budget_ms <= 600_000:
            raise ConfigError(f"CANDLEFLOW_SCORE_BUDGET_MS must be within 0..600000 (0: off), got {self.score_budget_ms}")
        if self.tree_runtime not in ("auto", "onnx"):
            raise ConfigError(f"CANDLEFLOW_TREE_RUNTIME must be auto or onnx, got {self.tree_runtime!r}")
        if self.malloc_arena_max < 0 or not 0 <= self.malloc_mmap_threshold_kb <= 32 * 1024:
            raise ConfigError("CANDLEFLOW_MALLOC_ARENA_MAX must be >= 0 and CANDLEFLOW_MALLOC_MMAP_THRESHOLD_KB within "
                              f"0..32768, got {self.malloc_arena_max}, {self.malloc_mmap_threshold_kb}")
        if self.fault_stall_recovery < 0:
            raise ConfigError(f"CANDLEFLOW_FAULT_STALL_RECOVERY must be >= 0, got {self.fault_stall_recovery}")
        if not 0 < self.recovery_stall_s <= 3600:
            raise ConfigError(f"CANDLEFLOW_RECOVERY_STALL_S must be within (0, 3600], got {self.recovery_stall_s}")
        if not 0 < self.checkpoint_interval_s <= 60:
            raise ConfigError(f"CANDLEFLOW_CHECKPOINT_INTERVAL_S must be within (0, 60], got {self.checkpoint_interval_s}")


_SECTIONS = {f.name: f.metadata["section"] for f in dataclasses.fields(Settings) if "section" in f.metadata}
