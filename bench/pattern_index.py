"""Measure the embedded pattern index candidates: recall@k against exact search and query latency.

Run: ``python -m bench.pattern_index [--n 100000] [--queries 1000]``. The vectors are embeddings
(:mod:`storage.patterns.embedding`) of real candle windows from ``data/candles`` (about 29k), topped up to
``n`` with windows of block-bootstrapped real returns so the distribution stays market-like.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np

from storage.patterns.embedding import DEFAULT_WINDOW, embed_windows

__all__ = ["market_vectors", "measure"]

CANDLES = Path(__file__).resolve().parent.parent / "data" / "candles"


def _closes(path: Path) -> np.ndarray:
    rows = gzip.decompress(path.read_bytes()).decode().splitlines()[1:]
    return np.array([float(r.split(",")[4]) for r in rows])


def market_vectors(n: int, seed: int = 7, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """``n`` embeddings: every real window first, then bootstrapped ones (blocks of 10 real returns)."""
    series = [_closes(p) for p in sorted(CANDLES.glob("*.csv.gz"))]
    real = np.concatenate([embed_windows(c, window) for c in series if len(c) > window + 1])
    if len(real) >= n:
        return real[:n]
    rng = np.random.default_rng(seed)
    returns = np.concatenate([np.diff(np.log(c)) for c in series])
    returns = returns[np.isfinite(returns)]
    need, block = n - len(real), 10
    starts = rng.integers(0, len(returns) - block, size=(need, (window + block - 1) // block))
    paths = returns[starts[..., None] + np.arange(block)].reshape(need, -1)[:, :window]
    closes = np.exp(np.concatenate([np.zeros((need, 1)), np.cumsum(paths, axis=1)], axis=1))
    fake = np.stack([embed_windows(c, window)[0] for c in closes])
    return np.concatenate([real, fake])


def _exact(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    sims = queries @ base.T
    return np.argsort(-sims, axis=1)[:, :k]


def _latencies(search, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    found, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(search(q, k))
        times.append(time.perf_counter() - t0)
    return np.array(found), np.array(times) * 1e6


def measure(n: int = 100_000, queries: int = 1000, k: int = 10) -> list[dict]:
    vectors = market_vectors(n + queries)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(vectors))
    base, qs = np.ascontiguousarray(vectors[order[:n]]), np.ascontiguousarray(vectors[order[n:]])
    truth = _exact(base, qs, k)
    results = []

    def record(name: str, build_s: float, search) -> None:
        found, us = _latencies(search, qs, k)
        recall = np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)])
        results.append({"index": name, "n": n, "dim": base.shape[1], "k": k, "build_s": round(build_s, 2),
                        f"recall@{k}": round(float(recall), 4), "p50_us": round(float(np.percentile(us, 50)), 1),
                        "p99_us": round(float(np.percentile(us, 99)), 1)})

    record("numpy exact (matmul + argpartition)", 0.0,
           lambda q, k: np.argpartition(-(base @ q), k)[:k])

    import faiss

    faiss.omp_set_num_threads(1)  # one query at a time on a 2-core box: threads only add overhead
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    record("faiss IndexFlatIP (exact)", time.perf_counter() - t0, lambda q, k: flat.search(q[None], k)[1][0])
    for m, ef in ((32, 64), (32, 128)):
        t0 = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(base.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 128
        hnsw.add(base)
        hnsw.hnsw.efSearch = ef
        record(f"faiss IndexHNSWFlat M={m} efSearch={ef}", time.perf_counter() - t0,
               lambda q, k, h=hnsw: h.search(q[None], k)[1][0])

    from usearch.index import Index

    for conn, ef in ((16, 64), (32, 128)):
        t0 = time.perf_counter()
        index = Index(ndim=base.shape[1], metric="ip", dtype="f32", connectivity=conn,
                      expansion_add=128, expansion_search=ef)
        index.add(np.arange(n), base, threads=1)
        record(f"usearch HNSW connectivity={conn} expansion_search={ef}", time.perf_counter() - t0,
               lambda q, k, i=index: i.search(q, k, threads=1).keys)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    for row in measure(args.n, args.queries):
        print(json.dumps(row))
