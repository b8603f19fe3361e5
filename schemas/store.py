"""Where schema ids come from: the base every store shares, and the local (serverless) store.

A store answers two questions: "which id do I write for record X?" and "which schema wrote id N?".
Both answers are cached per store instance, so the hot path never parses a schema twice.
"""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from schemas.loader import SCHEMA_NAMES, full_name, load_schema
from core.errors import ConfigError, DecodeError

__all__ = ["LocalSchemaStore", "SchemaStore", "UnknownSchemaId", "local_schema_id", "parse", "schema_store", "store_from_url"]


class UnknownSchemaId(DecodeError):
    """The message names a schema id this store does not know: the bytes are not ours to read."""


def parse(schema: dict[str, Any]) -> dict[str, Any]:
    """Parse for fastavro with a private name table, so two versions of one record never clash."""
    return fastavro.parse_schema(schema, named_schemas={})


def local_schema_id(schema: dict[str, Any]) -> int:
    """A 31-bit, non-zero id that every process derives alone from the schema's Parsing Canonical Form.

    Canonical form drops docs, defaults and whitespace, none of which change the binary encoding,
    so two schemas with one id always encode alike.

    >>> local_schema_id({"type": "record", "name": "a.B", "fields": []}) == local_schema_id(
    ...     {"type": "record", "name": "B", "namespace": "a", "fields": [], "doc": "ignored"})
    True
    """
    digest = hashlib.sha256(to_parsing_canonical_form(schema).encode("utf-8")).digest()
    # Confluent ids are signed 32-bit ints on the JVM side: keep the sign bit clear; 0 is "no id".
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


class SchemaStore(ABC):
    """Ids and writer schemas for the records in ``schemas/``; subclasses say where ids come from."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._writers: dict[int, dict[str, Any]] = {}

    def schema_id(self, name: str) -> int:
        """The id to write for record ``name`` (registered on first use)."""
        try:
            return self._ids[name]
        except KeyError:
            schema = load_schema(name)
            schema_id = self._register(full_name(name), schema)
            self._writers.setdefault(schema_id, parse(schema))
            self._ids[name] = schema_id
            return schema_id

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        """The parsed schema that wrote ``schema_id``; :class:`UnknownSchemaId` if there is none."""
        try:
            return self._writers[schema_id]
        except KeyError:
            schema = self._fetch(schema_id)
            if schema is None:
                raise UnknownSchemaId(f"unknown schema id {schema_id}") from None
            return self._writers.setdefault(schema_id, schema)

    @abstractmethod
    def _register(self, subject: str, schema: dict[str, Any]) -> int:
        """Return the id of ``schema`` under ``subject``, registering it if the backend needs to."""

    @abstractmethod
    def _fetch(self, schema_id: int) -> dict[str, Any] | None:
        """Return the parsed writer schema for ``schema_id``, or None when the backend has none."""


class LocalSchemaStore(SchemaStore):
    """Ids derived from the schemas themselves: no server, and every process agrees without talking.

    It knows the schemas of this checkout (plus any given to :meth:`add`); a message written with a
    schema it has never seen cannot be read, which is what a registry is for.

    >>> store = LocalSchemaStore()
    >>> store.schema_id("Candle") == LocalSchemaStore().schema_id("Candle")
    True
    >>> store.writer_schema(store.schema_id("Candle"))["name"]
    'candleflow.Candle'
    """

    def __init__(self) -> None:
        super().__init__()
        self._known: dict[int, dict[str, Any]] = {}
        for name in SCHEMA_NAMES:
            self.add(load_schema(name))

    def add(self, schema: dict[str, Any]) -> int:
        """Make an extra writer schema (e.g. an older version of a record) readable; return its id."""
        schema_id = local_schema_id(schema)
        canonical = to_parsing_canonical_form(schema)
        known = self._known.get(schema_id)
        if known is not None and to_parsing_canonical_form(known) != canonical:
            # 31 bits make this a one-in-billions event, but silently misreading data would be worse.
            raise ConfigError(f"schema id {schema_id} collides for {schema.get('name')} and {known.get('name')}")
        self._known[schema_id] = schema
        return schema_id

    def _register(self, subject: str, schema: dict[str, Any]) -> int:
        return self.add(schema)

    def _fetch(self, schema_id: int) -> dict[str, Any] | None:
        schema = self._known.get(schema_id)
        return None if schema is None else parse(schema)


def store_from_url(url: str | None) -> SchemaStore:
    """The store a setting asks for: no URL means the local store, a URL means that Schema Registry.

    >>> type(store_from_url(None)).__name__, type(store_from_url("")).__name__
    ('LocalSchemaStore', 'LocalSchemaStore')
    """
    if not url:
        return LocalSchemaStore()
    # Imported here so the local store works without the registry client's dependencies.
    from schemas.registry import RegistrySchemaStore

    return RegistrySchemaStore(url)


@functools.lru_cache(maxsize=8)
def _shared_store(url: str) -> SchemaStore:
    return store_from_url(url)


def schema_store(settings: Any) -> SchemaStore:
    """The schema store of ``settings`` (its ``schema_registry_url``, or the local store), one per URL in a
    process: every codec of a worker shares its registry client and its cache of fetched schemas.

    >>> from core.settings import Settings
    >>> schema_store(Settings()) is schema_store(Settings()), type(schema_store(Settings())).__name__
    (True, 'LocalSchemaStore')
    """
    return _shared_store(settings.schema_registry_url or "")
