"""Kafka SASL/TLS from the environment, handed to every client (the stream's, training's) in the form that client takes.

``CANDLEFLOW_BROKER_SECURITY_PROTOCOL`` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL),
``CANDLEFLOW_BROKER_SASL_MECHANISM`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), ``CANDLEFLOW_BROKER_SASL_USERNAME``,
``CANDLEFLOW_BROKER_SASL_PASSWORD`` (a secret: never in reprs or logs), ``CANDLEFLOW_BROKER_SSL_CAFILE``.

>>> from core.settings import Settings, Secret
>>> s = Settings(broker={"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
...                      "sasl_username": "svc", "sasl_password": Secret("pw")})
>>> sorted(aiokafka_security(s))
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol', 'ssl_context']
>>> confluent_security(s)["sasl.mechanisms"], aiokafka_security(Settings())
('SCRAM-SHA-512', {})
"""

from __future__ import annotations

import ssl
from typing import Any

from core.settings_network import SECURITY_PROTOCOLS

__all__ = ["aiokafka_security", "confluent_security", "faust_credentials", "PROTOCOLS"]

PROTOCOLS = SECURITY_PROTOCOLS  # checked when the settings are read (core/settings_network.py)


def _ssl_context(settings: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.broker.ssl_cafile or None)


def aiokafka_security(settings: Any) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaConsumer / AIOKafkaProducer (empty for PLAINTEXT)."""
    protocol = settings.broker.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        kwargs["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL"):
        kwargs.update(sasl_mechanism=settings.broker.sasl_mechanism, sasl_plain_username=settings.broker.sasl_username,
                      sasl_plain_password=str(settings.broker.sasl_password))
    return kwargs


def confluent_security(settings: Any) -> dict[str, Any]:
    """Configuration entries for confluent-kafka clients (the topic admin)."""
    protocol = settings.broker.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    conf: dict[str, Any] = {"security.protocol": protocol}
    if protocol.endswith("SSL") and settings.broker.ssl_cafile:
        conf["ssl.ca.location"] = settings.broker.ssl_cafile
    if protocol.startswith("SASL"):
        conf.update({"sasl.mechanisms": settings.broker.sasl_mechanism, "sasl.username": settings.broker.sasl_username,
                     "sasl.password": str(settings.broker.sasl_password)})
    return conf


def faust_credentials(settings: Any) -> Any:
    """``broker_credentials`` for the Faust app (None for PLAINTEXT)."""
    import faust

    protocol = settings.broker.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings) if protocol.endswith("SSL") else None
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.broker.sasl_username, password=str(settings.broker.sasl_password),
                                     mechanism=settings.broker.sasl_mechanism, ssl_context=context)
    return faust.SSLCredentials(context)
