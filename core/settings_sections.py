"""The sections of :class:`core.settings.Settings` about what a worker keeps and learns from: ``settings.storage``,
``settings.retrain`` and ``settings.patterns`` (the network ones, broker and web: :mod:`core.settings_network`).

Each is a frozen dataclass read by the one parser (:mod:`core.env_parser`) from the same ``CANDLEFLOW_*``
variables as the root, when the root is read; passed down from there, never read again by the code that
uses it. Each can still be built (and read, ``from_env``) on its own, for a test or a tool.

>>> s = StorageSettings.from_env({"CANDLEFLOW_POSTGRES_DSN": "postgresql://127.0.0.1/test",
...                               "CANDLEFLOW_SINK_BATCH_SIZE": "250"})
>>> str(s.postgres_dsn), s.sink_batch_size, s.weaviate_url
('postgresql://127.0.0.1/test', 250, '')
>>> StorageSettings.from_env({"CANDLEFLOW_SINK_BATCH_SIZE": "0"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_SINK_BATCH_SIZE must be >= 1, got 0

Passwords in the URLs never show in its repr (logs, tracebacks), nor does the URL itself on its own:

>>> "hunter2" in repr(StorageSettings(redis_url="redis://:hunter2@redis:6379/0")), masked_url("postgresql://u:pw@db/x")
(False, 'postgresql://u:***@db/x')
>>> StorageSettings.from_env({"CANDLEFLOW_REDIS_URL": "redis://:pw@redis:6379/0"}).redis_url
Secret('**********')

Retraining reads ``CANDLEFLOW_RETRAIN_<FIELD>`` (and ``CANDLEFLOW_ARTIFACTS_DIR``):

>>> RetrainConfig.from_env({"CANDLEFLOW_RETRAIN_WINDOW": "300", "CANDLEFLOW_ARTIFACTS_DIR": "/srv/a"}).artifacts_dir
PosixPath('/srv/a')
>>> RetrainConfig.from_env({"CANDLEFLOW_RETRAIN_METRIC": "luck"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_RETRAIN_METRIC must be one of accuracy, auc, log_loss, got 'luck'

Pattern search reads ``CANDLEFLOW_PATTERNS`` (on or off) and ``CANDLEFLOW_PATTERN_<FIELD>``:

>>> p = PatternSettings.from_env({"CANDLEFLOW_PATTERNS": "on", "CANDLEFLOW_PATTERN_K": "10"})
>>> p.enabled, p.k, p.max
(True, 10, 200000)
>>> PatternSettings.from_env({"CANDLEFLOW_PATTERN_K": "0"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_PATTERN_K must be >= 1, got 0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from core.env_parser import PREFIX, Secret, from_env
from core.errors import ConfigError

__all__ = ["PatternSettings", "RETRAIN_METRICS", "RetrainConfig", "StorageSettings", "masked_url"]

_PASSWORD = re.compile(r"(//[^/:@]*:)[^@/]*@")

RETRAIN_METRICS = {"accuracy": 1, "auc": 1, "log_loss": -1}  # what a retrain may be judged by; +1: higher is better


def masked_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", str(url))


@dataclass(frozen=True)
class StorageSettings:
    """Where the stores live and how the sinks batch (``CANDLEFLOW_<FIELD>``). Empty URL = that store is not
    used. The URLs that may carry a password are secrets."""

    # A child worker left at these defaults keeps what its inherited environment says (the tests and
    # benchmarks point their workers at their PostgreSQL that way; streams/worker_process.py).
    env_inherit_defaults = True

    postgres_dsn: Secret = Secret("postgresql://postgres@127.0.0.1:5432/postgres")
    postgres_pool_max: int = 4
    redis_url: Secret = Secret("redis://127.0.0.1:6379/0")
    redis_prefix: str = "candleflow"
    redis_ttl_s: int = 3600
    redis_timeout_s: float = 0.25
    weaviate_url: str = ""
    weaviate_grpc_port: int = 50051
    weaviate_collection: str = "CandlePattern"
    weaviate_api_key: Secret = Secret("")  # sent as a bearer key; the compose Weaviate refuses anonymous access
    sink_batch_size: int = 500
    sink_flush_interval_s: float = 0.2
    sink_max_buffer: int = 20_000
    sink_backoff_max_s: float = 5.0

    def __repr__(self) -> str:
        def shown(name: str, value: Any) -> str:
            return repr(masked_url(value)) if name.endswith(("_dsn", "_url")) else repr(value)

        return f"StorageSettings({', '.join(f'{f.name}={shown(f.name, getattr(self, f.name))}' for f in fields(self))})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StorageSettings:
        """Read ``CANDLEFLOW_<FIELD>`` from ``env`` (default ``os.environ``); ``overrides`` win."""
        return from_env(cls, env, overrides)

    def validate(self) -> None:
        for name in ("postgres_pool_max", "redis_ttl_s", "sink_batch_size", "sink_max_buffer"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{PREFIX}{name.upper()} must be >= 1, got {getattr(self, name)}")
        if self.sink_max_buffer < self.sink_batch_size:
            raise ConfigError(f"{PREFIX}SINK_MAX_BUFFER ({self.sink_max_buffer}) must be >= "
                              f"{PREFIX}SINK_BATCH_SIZE ({self.sink_batch_size})")
        for name in ("redis_timeout_s", "sink_flush_interval_s", "sink_backoff_max_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class RetrainConfig:
    """Read from ``CANDLEFLOW_RETRAIN_<FIELD>`` (``files`` comma-separated); ``artifacts_dir`` from
    ``CANDLEFLOW_ARTIFACTS_DIR``. Used by ``training/retrain_worker.py``."""

    env_inherit_defaults = True
    env_prefix = f"{PREFIX}RETRAIN_"
    env_names = {"artifacts_dir": f"{PREFIX}ARTIFACTS_DIR"}

    files: tuple[Path, ...] = ()
    use_topics: bool = True            # the candle topics: what the workers saw (training.topic_data)
    use_postgres: bool = True
    window: int = 5000                 # latest candles per (symbol, timeframe)
    min_candles: int = 400             # per series at least, from before a request's ``since`` if need be
    name: str = "lgbm-direction"       # the registry model name that is retrained
    share: float = 0.1                 # traffic share of a new candidate
    cooldown_s: float = 300.0
    metric: str = "accuracy"
    tolerance: float = 0.0             # how much worse than the active version still counts as "as good"
    num_boost_round: int = 100
    valid_fraction: float = 0.2
    walk_forward_folds: int = 3        # the decision's folds (training/walk_forward.py); 0: the holdout alone
    mamba_epochs: int = 8              # at most, a retrained sequence member (when the active bundle has one); early stopping
    threshold: float = 0.3
    cost_bps: float = 10.0
    group_id: str = "candleflow-retrain"
    work_dir: Path = Path("var/retrain")
    artifacts_dir: Path = Path("var/artifacts")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        prefix = self.env_prefix
        if self.metric not in RETRAIN_METRICS:
            raise ConfigError(f"{prefix}METRIC must be one of {', '.join(RETRAIN_METRICS)}, got {self.metric!r}")
        if not 0.0 < self.share <= 1.0:
            raise ConfigError(f"{prefix}SHARE must be in (0, 1], got {self.share}")
        if self.window < 200 or self.num_boost_round < 1 or self.cooldown_s < 0 or self.mamba_epochs < 1:
            raise ConfigError(f"{prefix}WINDOW must be >= 200, NUM_BOOST_ROUND >= 1, COOLDOWN_S >= 0, MAMBA_EPOCHS >= 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> RetrainConfig:
        """Read ``CANDLEFLOW_RETRAIN_<FIELD>`` (and ``CANDLEFLOW_ARTIFACTS_DIR``) from ``env``; ``overrides`` win."""
        return from_env(cls, env, overrides)


@dataclass(frozen=True)
class PatternSettings:
    """Similar-pattern consensus on signals (``agents/patterns.py``): FAISS in the worker, or Weaviate if
    ``settings.storage.weaviate_url`` is set. ``enabled`` from ``CANDLEFLOW_PATTERNS``; the rest from
    ``CANDLEFLOW_PATTERN_<FIELD>``."""

    env_prefix = f"{PREFIX}PATTERN_"
    env_names = {"enabled": f"{PREFIX}PATTERNS"}

    enabled: bool = False
    k: int = 20                        # neighbours each signal's consensus is made of
    max: int = 200_000                 # patterns the embedded FAISS index holds; when full it keeps its newest half

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> PatternSettings:
        """Read ``CANDLEFLOW_PATTERNS`` and ``CANDLEFLOW_PATTERN_<FIELD>`` from ``env``; ``overrides`` win."""
        return from_env(cls, env, overrides)

    def validate(self) -> None:
        for name in ("k", "max"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{self.env_prefix}{name.upper()} must be >= 1, got {getattr(self, name)}")
