"""The embedded pattern store: FAISS HNSW in process, no server.

Chosen over usearch and exact search by measurement (docs/storage.md, ``python -m bench.pattern_index``):
at 100k patterns, HNSW M=32 / efSearch=128 kept recall@10 at 0.998 of exact search with a p50 query
of ~0.3 ms, where exact FAISS search took ~0.85 ms and usearch needed ~0.9 ms for the same recall.

Vectors are L2-normalised on the way in, so inner product is cosine similarity.

>>> import asyncio, numpy as np
>>> store = FaissPatternStore(dim=4)
>>> vecs = np.eye(4, dtype=np.float32)
>>> metas = [PatternMeta("ETH-BTC", "5m", t, o) for t, o in enumerate([0.01, -0.02, 0.03, 0.0])]
>>> asyncio.run(store.add(vecs, metas)), asyncio.run(store.add(vecs, metas))  # the replay adds nothing
(4, 0)
>>> [n.meta.open_time for n in asyncio.run(store.query(np.array([1, 0.1, 0, 0]), k=2))]
[0, 1]
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from storage.patterns.base import Neighbour, PatternMeta
from storage.patterns.embedding import embedding_dim
from core.errors import ConfigError, InvalidInput

__all__ = ["FaissPatternStore"]

_THREAD_ADD_ROWS = 512  # larger adds run in a thread (FAISS releases the GIL) so the event loop keeps going


class FaissPatternStore:
    """An in-process :class:`~storage.patterns.base.PatternStore` on a FAISS HNSW index."""

    def __init__(self, dim: int | None = None, *, m: int = 32, ef_construction: int = 128, ef_search: int = 128,
                 max_patterns: int = 200_000) -> None:
        if max_patterns < 2:
            raise ConfigError(f"the pattern index needs room for 2 patterns or more, got {max_patterns}")
        self.dim = dim or embedding_dim()
        self._hnsw = (m, ef_construction, ef_search)
        self._index = self._new_index()
        # Bounded: HNSW cannot delete, so when full the index is rebuilt from its newest half.
        self.max_patterns = max_patterns
        self._metas: list[PatternMeta] = []  # FAISS id i -> metadata
        self._keys: set[str] = set()
        self._lock = asyncio.Lock()  # HNSW is not safe for a search during an add

    async def add(self, vectors: np.ndarray, metadata: Sequence[PatternMeta]) -> int:
        vectors = self._check(vectors)
        if len(vectors) != len(metadata):
            raise InvalidInput(f"{len(vectors)} vectors but {len(metadata)} metadata rows")
        fresh: list[int] = []
        batch: set[str] = set()
        for i, meta in enumerate(metadata):
            if meta.key not in self._keys and meta.key not in batch:  # idempotent by key: a replayed outcome
                batch.add(meta.key)                                   # is not a second neighbour
                fresh.append(i)
        if not fresh:
            return 0
        fresh = fresh[-(self.max_patterns // 2):]  # a flood keeps its newest
        rows = np.ascontiguousarray(vectors[fresh])
        async with self._lock:
            if len(self._metas) + len(rows) > self.max_patterns:
                await asyncio.to_thread(self._keep_newest, self.max_patterns // 2 - len(rows))
            if len(rows) > _THREAD_ADD_ROWS:
                await asyncio.to_thread(self._index.add, rows)
            else:
                self._index.add(rows)
            self._metas.extend(metadata[i] for i in fresh)
            self._keys.update(metadata[i].key for i in fresh)
        return len(fresh)

    def _new_index(self):
        import faiss

        m, ef_construction, ef_search = self._hnsw
        index = faiss.IndexHNSWFlat(self.dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = ef_construction, ef_search
        return index

    def _keep_newest(self, n: int) -> None:
        """Rebuild the index from its newest ``n`` patterns (the oldest ones leave: HNSW cannot delete)."""
        n = max(n, 0)
        start = len(self._metas) - n
        kept = self._index.reconstruct_n(start, n) if n else np.empty((0, self.dim), dtype=np.float32)
        index = self._new_index()
        if n:
            index.add(kept)
        self._index, self._metas = index, self._metas[start:]
        self._keys = {meta.key for meta in self._metas}

    async def query(self, vector: np.ndarray, k: int) -> list[Neighbour]:
        q = self._check(np.asarray(vector).reshape(1, -1))
        async with self._lock:
            sims, ids = self._index.search(q, k)
        return [Neighbour(self._metas[i], float(s)) for s, i in zip(sims[0], ids[0]) if i >= 0]

    async def count(self) -> int:
        return len(self._metas)

    async def close(self) -> None:
        pass

    def save(self, directory: str | Path) -> None:
        """Write the index and its metadata, so a restart does not rebuild the graph."""
        import faiss

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(directory / "patterns.faiss"))
        (directory / "patterns.jsonl").write_text("".join(json.dumps(list(m)) + "\n" for m in self._metas))

    @classmethod
    def load(cls, directory: str | Path, *, ef_search: int = 128) -> "FaissPatternStore":
        import faiss

        directory = Path(directory)
        index = faiss.read_index(str(directory / "patterns.faiss"))
        metas = [PatternMeta(*json.loads(line)) for line in (directory / "patterns.jsonl").read_text().splitlines()]
        if index.ntotal != len(metas):
            raise ConfigError(f"pattern store at {directory}: index has {index.ntotal} vectors, metadata {len(metas)}")
        store = cls(index.d)
        index.hnsw.efSearch = ef_search
        store._index, store._metas, store._keys = index, metas, {m.key for m in metas}
        return store

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise InvalidInput(f"pattern vectors must be n x {self.dim}, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise InvalidInput("pattern vectors must be finite")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(v / np.maximum(norms, 1e-12))
