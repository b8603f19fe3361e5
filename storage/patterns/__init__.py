"""Pattern search: embeddings of recent windows, k-nearest historical patterns, and their consensus.

:func:`open_pattern_store` picks the implementation: Weaviate when a URL is configured, the embedded
FAISS store otherwise.
"""

from __future__ import annotations

from core.settings_sections import PatternSettings, StorageSettings
from storage.patterns.base import (
    Consensus,
    Neighbour,
    PatternMeta,
    PatternStore,
    consensus,
)
from storage.patterns.embedding import (
    DEFAULT_WINDOW,
    embed_window,
    embed_windows,
    embedding_dim,
)
from storage.patterns.faiss_store import FaissPatternStore
from storage.patterns.history import labelled_patterns, signal_with_consensus

__all__ = [
    "DEFAULT_WINDOW",
    "Consensus",
    "FaissPatternStore",
    "Neighbour",
    "PatternMeta",
    "PatternStore",
    "consensus",
    "embed_window",
    "embed_windows",
    "embedding_dim",
    "labelled_patterns",
    "open_pattern_store",
    "signal_with_consensus",
]


async def open_pattern_store(settings: StorageSettings, patterns: PatternSettings) -> PatternStore:
    """The configured store: :class:`WeaviatePatternStore` if ``weaviate_url`` is set, else FAISS (holding
    ``patterns.max`` patterns)."""
    if settings.weaviate_url:
        from storage.patterns.weaviate_store import WeaviatePatternStore

        return await WeaviatePatternStore.connect(settings.weaviate_url, grpc_port=settings.weaviate_grpc_port,
                                                  collection=settings.weaviate_collection,
                                                  api_key=settings.weaviate_api_key or None)
    from storage.patterns.faiss_store import FaissPatternStore

    return FaissPatternStore(max_patterns=patterns.max)
