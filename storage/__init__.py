"""Candleflow's storage layer: where predictions, signals and outcomes end up, and how they get there.

- :mod:`storage.postgres`: the system of record (asyncpg; versioned migrations; idempotent batched upserts).
- :mod:`storage.sink`: :class:`~storage.sink.BufferedSink`, the bounded, retrying buffer an agent puts
  records into; it says which input offsets are safely stored so the agent commits no further.
- :mod:`storage.redis_state`: latest signal / features per (symbol, timeframe) and a signal channel;
  best effort, never raises into the pipeline.
- :mod:`storage.patterns`: pattern embeddings and k-nearest-neighbour consensus (embedded FAISS, or
  Weaviate when configured).

Nothing is imported eagerly here: each store pulls in only its own client library.
"""

__all__ = ["StorageSettings"]

from storage.config import StorageSettings
