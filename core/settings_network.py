"""The network sections of :class:`core.settings.Settings`: ``settings.broker`` (:class:`BrokerSettings`, the
Kafka cluster a worker reads and writes) and ``settings.web`` (:class:`WebSettings`, the web server it serves).

Read by the one parser (:mod:`core.env_parser`) with the root, under the variables they always had:
``CANDLEFLOW_BROKER`` is the bootstrap list, ``CANDLEFLOW_BROKER_<FIELD>`` the security settings,
``CANDLEFLOW_WEB_<FIELD>`` the server's address.

>>> b = BrokerSettings.from_env({"CANDLEFLOW_BROKER": "kafka:9092", "CANDLEFLOW_BROKER_SECURITY_PROTOCOL": "SASL_SSL",
...                              "CANDLEFLOW_BROKER_SASL_PASSWORD": "hunter2", "CANDLEFLOW_FETCH_MAX_WAIT_MS": "100"})
>>> b.bootstrap, b.security_protocol, b.fetch_max_wait_ms, "hunter2" in repr(b)
('kafka:9092', 'SASL_SSL', 100, False)
>>> BrokerSettings.from_env({"CANDLEFLOW_BROKER_SECURITY_PROTOCOL": "TLS"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_BROKER_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got 'TLS'

>>> w = WebSettings.from_env({"CANDLEFLOW_WEB_PORT": "7000", "CANDLEFLOW_ADMIN_TOKEN": "tok-1"})
>>> w.url, w.sse_max_clients, w.admin_token
('http://127.0.0.1:7000', 64, Secret('**********'))
>>> WebSettings.from_env({"CANDLEFLOW_WEB_PORT": "70000"})
Traceback (most recent call last):
...
core.errors.ConfigError: CANDLEFLOW_WEB_PORT must be a TCP port, got 70000
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, Mapping

from core.env_parser import PREFIX, Secret, from_env
from core.errors import ConfigError

__all__ = ["BrokerSettings", "SECURITY_PROTOCOLS", "WebSettings"]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True)
class BrokerSettings:
    """The Kafka cluster: ``bootstrap`` from ``CANDLEFLOW_BROKER``, security from ``CANDLEFLOW_BROKER_<FIELD>``
    (handed to each client by ``kafka_io/security.py``), the fetch wait and producer linger from
    ``CANDLEFLOW_FETCH_MAX_WAIT_MS`` and ``CANDLEFLOW_PRODUCER_LINGER_S``."""

    env_prefix = f"{PREFIX}BROKER_"
    env_names = {"bootstrap": f"{PREFIX}BROKER", "fetch_max_wait_ms": f"{PREFIX}FETCH_MAX_WAIT_MS",
                 "producer_linger_s": f"{PREFIX}PRODUCER_LINGER_S"}

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"  # SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism: str = "PLAIN"  # or SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username: str = ""
    sasl_password: Secret = field(default=Secret(""), repr=False)
    ssl_cafile: str = ""
    fetch_max_wait_ms: int = 25
    # How long the producer gathers records into one request: fewer, larger requests cost the broker far
    # less per record. 0.005 halves the steady latency in quick runs (BENCHMARKS.md, 2026-12-02), but the
    # full pipeline benchmark's bursts did not complete with it on the embedded broker: 50 ms stays the default.
    producer_linger_s: float = 0.05

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> BrokerSettings:
        """Read this section's variables from ``env`` (default ``os.environ``); ``overrides`` win."""
        return from_env(cls, env, overrides)

    def validate(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(f"{self.env_prefix}SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, "
                              f"got {self.security_protocol!r}")
        if not 0 <= self.fetch_max_wait_ms <= 10_000:
            raise ConfigError(f"{PREFIX}FETCH_MAX_WAIT_MS must be within 0..10000, got {self.fetch_max_wait_ms}")
        if not 0 <= self.producer_linger_s <= 10:
            raise ConfigError(f"{PREFIX}PRODUCER_LINGER_S must be within 0..10, got {self.producer_linger_s}")


@dataclass(frozen=True)
class WebSettings:
    """The worker's web server (``CANDLEFLOW_WEB_<FIELD>``; ``CANDLEFLOW_SSE_MAX_CLIENTS``, ``CANDLEFLOW_ADMIN_TOKEN``)."""

    env_prefix = f"{PREFIX}WEB_"
    env_names = {"sse_max_clients": f"{PREFIX}SSE_MAX_CLIENTS", "admin_token": f"{PREFIX}ADMIN_TOKEN"}

    host: str = "127.0.0.1"
    port: int = 6066
    # What other workers use to reach this one's web views (routing by symbol); empty: host, or this
    # machine's host name when host is a wildcard (0.0.0.0 in containers).
    advertised_host: str = ""
    sse_max_clients: int = 64  # /signals/stream clients at once (one shared consumer); beyond: 503
    admin_token: Secret = field(default=Secret(""), repr=False)

    @property
    def url(self) -> str:
        """The URL other workers route requests to (Faust's canonical URL)."""
        host = self.advertised_host or (socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host)
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WebSettings:
        """Read this section's variables from ``env`` (default ``os.environ``); ``overrides`` win."""
        return from_env(cls, env, overrides)

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"{self.env_prefix}PORT must be a TCP port, got {self.port}")
        if self.sse_max_clients < 1:
            raise ConfigError(f"{PREFIX}SSE_MAX_CLIENTS must be at least 1, got {self.sse_max_clients}")
