"""Storage settings: one frozen object read once from ``CANDLEFLOW_*`` like :class:`core.settings.Settings`.

Kept apart from ``core.settings`` so the storage layer can be configured (and tested) on its own;
the fields are meant to be folded into ``Settings`` when the agents are wired.

>>> s = StorageSettings.from_env({"CANDLEFLOW_POSTGRES_DSN": "postgresql://127.0.0.1/test",
...                               "CANDLEFLOW_SINK_BATCH_SIZE": "250"})
>>> s.postgres_dsn, s.sink_batch_size, s.weaviate_url
('postgresql://127.0.0.1/test', 250, '')
>>> StorageSettings.from_env({"CANDLEFLOW_SINK_BATCH_SIZE": "0"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_SINK_BATCH_SIZE must be >= 1, got 0

Passwords in the URLs never show in its repr (logs, tracebacks):

>>> "hunter2" in repr(StorageSettings(redis_url="redis://:hunter2@redis:6379/0")), masked_url("postgresql://u:pw@db/x")
(False, 'postgresql://u:***@db/x')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Mapping

from core.errors import ConfigError
from core.settings import Secret, from_env

__all__ = ["StorageSettings", "masked_url"]

PREFIX = "CANDLEFLOW_"
_PASSWORD = re.compile(r"(//[^/:@]*:)[^@/]*@")


def masked_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", url)


@dataclass(frozen=True)
class StorageSettings:
    """Where the stores live and how the sinks batch. Empty URL = that store is not used."""

    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    postgres_pool_max: int = 4
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "candleflow"
    redis_ttl_s: int = 3600
    redis_timeout_s: float = 0.25
    weaviate_url: str = ""
    weaviate_grpc_port: int = 50051
    weaviate_collection: str = "CandlePattern"
    weaviate_api_key: Secret = Secret("")
    pattern_max: int = 200_000  # patterns the embedded FAISS index holds; when full it keeps its newest half  # sent as a bearer key; the compose Weaviate refuses anonymous access
    sink_batch_size: int = 500
    sink_flush_interval_s: float = 0.2
    sink_max_buffer: int = 20_000
    sink_backoff_max_s: float = 5.0

    def __repr__(self) -> str:
        def shown(name: str, value: Any) -> str:
            return repr(masked_url(value)) if name.endswith(("_dsn", "_url")) else repr(value)

        return f"StorageSettings({', '.join(f'{f.name}={shown(f.name, getattr(self, f.name))}' for f in fields(self))})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "StorageSettings":
        """Read ``CANDLEFLOW_<FIELD>`` from ``env`` (default ``os.environ``); ``overrides`` win."""
        return from_env(cls, env, overrides)

    def validate(self) -> None:
        for name in ("postgres_pool_max", "redis_ttl_s", "sink_batch_size", "sink_max_buffer", "pattern_max"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{PREFIX}{name.upper()} must be >= 1, got {getattr(self, name)}")
        if self.sink_max_buffer < self.sink_batch_size:
            raise ConfigError(f"{PREFIX}SINK_MAX_BUFFER ({self.sink_max_buffer}) must be >= "
                              f"{PREFIX}SINK_BATCH_SIZE ({self.sink_batch_size})")
        for name in ("redis_timeout_s", "sink_flush_interval_s", "sink_backoff_max_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{PREFIX}{name.upper()} must be > 0, got {getattr(self, name)}")
