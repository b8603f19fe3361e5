"""The Weaviate pattern store (weaviate-client v4, async), used when ``CANDLEFLOW_WEAVIATE_URL`` is set.

One collection (default ``CandlePattern``) with self-provided vectors (cosine HNSW) and the properties
``symbol``, ``timeframe``, ``open_time`` (epoch ms) and ``outcome`` (realised log return). Each object's
UUID is derived from :attr:`PatternMeta.key`, and a batch insert of an existing UUID replaces it, so a
replay stores nothing twice.

Needs a running Weaviate server; none can be installed here, so its tests run only when
``CANDLEFLOW_WEAVIATE_URL`` is set. The mapping between patterns and objects is tested offline.

>>> obj = to_object(np.array([0.6, 0.8]), PatternMeta("ETH-BTC", "5m", 1515560100000, 0.004))
>>> obj.properties["open_time"], obj.vector
(1515560100000, [0.6000000238418579, 0.800000011920929])
"""

from __future__ import annotations

from typing import Any, Sequence
from urllib.parse import urlparse

import numpy as np

from storage.patterns.base import Neighbour, PatternMeta
from storage.patterns.embedding import embedding_dim
from core.errors import ConfigError, InvalidInput, Retryable

__all__ = ["WeaviatePatternStore", "from_object", "to_object"]

_PROPERTIES = ("symbol", "timeframe", "open_time", "outcome")


def to_object(vector: np.ndarray, meta: PatternMeta) -> Any:
    from weaviate.classes.data import DataObject
    from weaviate.util import generate_uuid5

    props = {"symbol": meta.symbol, "timeframe": meta.timeframe, "open_time": int(meta.open_time),
             "outcome": float(meta.outcome)}
    return DataObject(properties=props, uuid=generate_uuid5(meta.key),
                      vector=np.asarray(vector, dtype=np.float32).tolist())


def from_object(obj: Any) -> Neighbour:
    p = obj.properties
    distance = obj.metadata.distance if obj.metadata and obj.metadata.distance is not None else 1.0
    return Neighbour(PatternMeta(p["symbol"], p["timeframe"], int(p["open_time"]), float(p["outcome"])),
                     1.0 - float(distance))  # cosine distance -> similarity


class WeaviatePatternStore:
    """A :class:`~storage.patterns.base.PatternStore` in a Weaviate collection. Build it with :meth:`connect`."""

    def __init__(self, client: Any, collection: str = "CandlePattern", dim: int | None = None) -> None:
        self._client = client
        self.name = collection
        self.dim = dim or embedding_dim()

    @classmethod
    async def connect(cls, url: str, *, grpc_port: int = 50051, collection: str = "CandlePattern",
                      dim: int | None = None, api_key: str | None = None) -> "WeaviatePatternStore":
        import weaviate
        from weaviate.classes.init import Auth

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"CANDLEFLOW_WEAVIATE_URL must be http(s)://host[:port], got {url!r}")
        secure = parsed.scheme == "https"
        client = weaviate.use_async_with_custom(
            http_host=parsed.hostname, http_port=parsed.port or (443 if secure else 80), http_secure=secure,
            grpc_host=parsed.hostname, grpc_port=grpc_port, grpc_secure=secure,
            auth_credentials=Auth.api_key(api_key) if api_key else None)
        try:
            await client.connect()
            store = cls(client, collection, dim)
            await store.ensure_collection()
        except (ConfigError, InvalidInput):
            await client.close()
            raise
        except Exception as exc:  # the client raises its own connection errors and httpx/grpc ones
            await client.close()
            raise Retryable(f"Weaviate at {url} unavailable: {exc}") from exc
        return store

    async def ensure_collection(self) -> None:
        from weaviate.classes.config import (
            Configure,
            DataType,
            Property,
            VectorDistances,
        )

        if await self._client.collections.exists(self.name):
            return
        await self._client.collections.create(
            self.name,
            properties=[Property(name="symbol", data_type=DataType.TEXT),
                        Property(name="timeframe", data_type=DataType.TEXT),
                        Property(name="open_time", data_type=DataType.INT),
                        Property(name="outcome", data_type=DataType.NUMBER)],
            vector_config=Configure.Vectors.self_provided(
                vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)))

    async def add(self, vectors: np.ndarray, metadata: Sequence[PatternMeta]) -> int:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(metadata):
            raise InvalidInput(f"pattern vectors must be n x {self.dim} with one metadata row each")
        unique = {m.key: i for i, m in enumerate(metadata)}  # one object per key even within a batch
        objects = [to_object(vectors[i], metadata[i]) for i in unique.values()]
        try:
            result = await self._client.collections.get(self.name).data.insert_many(objects)
        except Exception as exc:
            raise Retryable(f"Weaviate insert failed: {exc}") from exc
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise Retryable(f"Weaviate refused {len(result.errors)} of {len(objects)} patterns: {first.message}")
        return len(objects)

    async def query(self, vector: np.ndarray, k: int) -> list[Neighbour]:
        from weaviate.classes.query import MetadataQuery

        try:
            response = await self._client.collections.get(self.name).query.near_vector(
                near_vector=np.asarray(vector, dtype=np.float32).tolist(), limit=k,
                return_metadata=MetadataQuery(distance=True), return_properties=list(_PROPERTIES))
        except Exception as exc:
            raise Retryable(f"Weaviate query failed: {exc}") from exc
        return [from_object(o) for o in response.objects]

    async def count(self) -> int:
        result = await self._client.collections.get(self.name).aggregate.over_all(total_count=True)
        return int(result.total_count or 0)

    async def drop(self) -> None:
        """Delete the collection (tests use a unique one each)."""
        await self._client.collections.delete(self.name)

    async def close(self) -> None:
        await self._client.close()
