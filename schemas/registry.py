"""Schema ids from a Confluent Schema Registry, one subject per record (RecordNameStrategy).

One subject per record, not per topic, because the same record (a Candle) travels on several
topics (``candles.1m``, ``candles.5m``, ...) and must keep one id and one compatibility history.
"""

from __future__ import annotations

import json
from typing import Any

import fastavro

from schemas.store import SchemaStore
from core.errors import ConfigError, DecodeError, Retryable

__all__ = ["RegistrySchemaStore"]


class RegistrySchemaStore(SchemaStore):
    """A store backed by Schema Registry at ``url``, through confluent-kafka's registry client.

    ``client`` lets a caller share one already-built client (tests pass the ``mock://`` double so
    that confluent-kafka's own serializers see the same registrations).

    >>> store = RegistrySchemaStore("mock://doctest")  # an in-process double; no server involved
    >>> schema_id = store.schema_id("Candle")
    >>> store.writer_schema(schema_id)["name"]
    'candleflow.Candle'
    """

    def __init__(self, url: str | None = None, *, client: Any = None, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        if client is None:
            if not url:
                raise ConfigError("RegistrySchemaStore needs a registry URL or a client")
            client = _new_client({**(conf or {}), "url": url})
        self.client = client

    def _register(self, subject: str, schema: dict[str, Any]) -> int:
        from confluent_kafka.schema_registry import Schema, SchemaRegistryError

        try:
            return self.client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code in (409, 422):
                # Incompatible or invalid schema: retrying cannot help, the deployment is wrong.
                raise ConfigError(f"registry refused {subject}: {exc}") from exc
            raise Retryable(f"registry unavailable registering {subject}: {exc}") from exc
        except Exception as exc:  # connection errors come from httpx, whose types we do not import
            raise Retryable(f"registry unavailable registering {subject}: {exc}") from exc

    def _fetch(self, schema_id: int) -> dict[str, Any] | None:
        from confluent_kafka.schema_registry import SchemaRegistryError

        try:
            schema = self.client.get_schema(schema_id)
            named: dict[str, Any] = {}
            self._parse_references(schema, named)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise Retryable(f"registry unavailable fetching schema id {schema_id}: {exc}") from exc
        except DecodeError:
            raise
        except Exception as exc:
            raise Retryable(f"registry unavailable fetching schema id {schema_id}: {exc}") from exc
        if (schema.schema_type or "AVRO") != "AVRO":
            raise DecodeError(f"schema id {schema_id} is {schema.schema_type}, not AVRO")
        try:
            return fastavro.parse_schema(json.loads(schema.schema_str), named_schemas=named)
        except Exception as exc:
            raise DecodeError(f"schema id {schema_id} is not a usable Avro schema: {exc}") from exc

    def _parse_references(self, schema: Any, named: dict[str, Any]) -> None:
        """Parse the schemas ``schema`` references, depth first, into ``named``.

        Ours are registered self-contained, but other producers may register with references.
        """
        for ref in schema.references or ():
            referenced = self.client.get_version(ref.subject, ref.version).schema
            self._parse_references(referenced, named)
            try:
                fastavro.parse_schema(json.loads(referenced.schema_str), named_schemas=named)
            except Exception as exc:
                raise DecodeError(f"referenced schema {ref.subject} v{ref.version} is unusable: {exc}") from exc


def _new_client(conf: dict[str, Any]) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    # new_client() hands out the in-process double for mock:// URLs; older releases lack it.
    factory = getattr(SchemaRegistryClient, "new_client", SchemaRegistryClient)
    return factory(conf)
