"""Pattern embeddings and the embedded FAISS store on real candles; Weaviate when a URL is set."""

from __future__ import annotations

import gzip
import math
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from storage.patterns import (
    FaissPatternStore,
    PatternMeta,
    PatternStore,
    embed_window,
    embed_windows,
    labelled_patterns,
    signal_with_consensus,
)
from core.errors import ConfigError, InvalidInput
from tests.storage.records import signal

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"


def _series(name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = gzip.decompress((CANDLES / name).read_bytes()).decode().splitlines()[1:]
    parts = [r.split(",") for r in rows]
    return np.array([float(p[4]) for p in parts]), np.array([int(p[0]) for p in parts])


def test_embedding_is_scale_free_normalised_and_batch_consistent():
    closes, _ = _series("ETH-BTC_5m.csv.gz")
    batch = embed_windows(closes[:500])
    singles = np.stack([embed_window(closes[: i + 31]) for i in range(len(batch))])
    np.testing.assert_allclose(batch, singles, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embed_windows(closes[:500] * 37.0), batch, atol=1e-5)
    # a window and its mirror image (every return negated) are far apart: direction matters
    mirrored = embed_window(np.exp(-np.log(closes[:31])))
    assert float(mirrored @ batch[0]) < 0
    flat = embed_window(np.full(31, 2.0))
    assert np.all(np.isfinite(flat))
    with pytest.raises(InvalidInput):
        embed_window(closes[:10])
    with pytest.raises(InvalidInput):
        embed_windows(np.r_[closes[:40], -1.0])


async def test_faiss_store_matches_exact_search_and_is_idempotent(tmp_path):
    closes, times = _series("ETH-BTC_5m.csv.gz")
    vectors, metas = labelled_patterns(closes[:4000], times[:4000], "ETH-BTC", "5m", horizon=3)
    store = FaissPatternStore()
    assert isinstance(store, PatternStore)
    assert await store.add(vectors, metas) == len(metas)
    assert await store.add(vectors[:100], metas[:100]) == 0  # a replay adds nothing
    assert await store.count() == len(metas)

    queries = embed_windows(closes[4000:4300])
    recall = []
    for q in queries[::10]:
        got = [n.meta.open_time for n in await store.query(q, 10)]
        exact = [metas[i].open_time for i in np.argsort(-(vectors @ q))[:10]]
        recall.append(len(set(got) & set(exact)) / 10)
    assert np.mean(recall) >= 0.95

    neighbours = await store.query(queries[0], 5)
    assert [n.similarity for n in neighbours] == sorted((n.similarity for n in neighbours), reverse=True)
    store.save(tmp_path / "idx")
    loaded = FaissPatternStore.load(tmp_path / "idx")
    assert await loaded.query(queries[0], 5) == neighbours
    assert await loaded.add(vectors[:5], metas[:5]) == 0
    with pytest.raises(InvalidInput):
        await store.query(np.ones(3), 5)


async def test_a_full_faiss_index_keeps_its_newest_half_and_still_answers_exactly():
    """HNSW cannot delete: past ``max_patterns`` the index is rebuilt from its newest half, so memory stays
    bounded however long the worker runs; the kept patterns are found as before, the dropped ones are gone."""
    closes, times = _series("ETH-BTC_5m.csv.gz")
    vectors, metas = labelled_patterns(closes[:3000], times[:3000], "ETH-BTC", "5m", horizon=3)
    store = FaissPatternStore(max_patterns=1000)
    for start in range(0, len(metas), 250):
        await store.add(vectors[start:start + 250], metas[start:start + 250])
        assert await store.count() <= 1000
    kept = {m.key for m in store._metas}
    assert metas[-1].key in kept and metas[0].key not in kept
    newest = vectors[-1]
    assert (await store.query(newest, 1))[0].meta == metas[-1]
    assert await store.add(vectors[-10:], metas[-10:]) == 0  # still idempotent for what it holds
    with pytest.raises(ConfigError):
        FaissPatternStore(max_patterns=1)


async def test_a_pattern_add_that_times_out_still_lands_whole():
    """The worker calls its pattern store best-effort (core/best_effort.py): a slow add gives up waiting
    but is not cancelled half-way, so the index and its metadata still agree once it ends."""
    import asyncio

    from core.best_effort import BestEffort

    closes, times = _series("ETH-BTC_5m.csv.gz")
    vectors, metas = labelled_patterns(closes[:6000], times[:6000], "ETH-BTC", "5m", horizon=3)
    store, calls = FaissPatternStore(), BestEffort("patterns", timeout_s=1e-6)
    assert await calls.call(lambda: store.add(vectors, metas), default=-1) == -1  # gave up waiting
    assert calls.failures == 1 and calls.open and "TimeoutError" in calls.last_error
    for _ in range(1000):
        if await store.count() == len(metas):
            break
        await asyncio.sleep(0.01)
    assert await store.count() == len(metas) and len(store._metas) == len(metas)
    assert (await store.query(vectors[-1], 1))[0].meta == metas[-1]  # each vector still finds its own metadata


async def test_pattern_consensus_appears_on_signals_and_is_stored(pg_dsn):
    """History of two symbols goes into the embedded store; a live signal on ETH-BTC's latest window
    (whose outcome is not known yet, so it is not in the store) gets its consensus, which the signals table keeps."""
    store = FaissPatternStore()
    for name, symbol in (("ETH-BTC_5m.csv.gz", "ETH-BTC"), ("LTC-BTC_5m.csv.gz", "LTC-BTC")):
        closes, times = _series(name)
        await store.add(*labelled_patterns(closes, times, symbol, "5m", horizon=1))
    closes, _ = _series("ETH-BTC_5m.csv.gz")
    enriched = await signal_with_consensus(signal(1), store, closes[-31:] * 1.5, k=20)
    assert enriched["pattern_k"] == 20
    assert 0 <= enriched["pattern_bullish_share"] <= 1 and 0 <= enriched["pattern_bearish_share"] <= 1
    assert enriched["pattern_bullish_share"] + enriched["pattern_bearish_share"] <= 1 + 1e-9
    assert math.isfinite(enriched["pattern_mean_outcome"]) and 0.3 < enriched["pattern_mean_similarity"] <= 1.0 + 1e-6
    assert enriched["id"] == signal(1)["id"]

    from storage.postgres import PostgresStore

    pg = await PostgresStore(pg_dsn).start()
    try:
        await pg.write("signals", [enriched])
        [row] = await pg.recent_signals("ETH-BTC", limit=1)
        assert row["pattern_k"] == 20 and row["pattern_bullish_share"] == enriched["pattern_bullish_share"]
    finally:
        await pg.close()


def test_weaviate_object_mapping_offline():
    from storage.patterns.weaviate_store import to_object

    meta = PatternMeta("ETH-BTC", "5m", 1, -0.5)
    a, b = to_object(np.ones(35), meta), to_object(np.zeros(35), meta)
    assert a.uuid == b.uuid  # same key, same object: an insert replaces instead of duplicating
    assert a.properties == {"symbol": "ETH-BTC", "timeframe": "5m", "open_time": 1, "outcome": -0.5}


WEAVIATE_URL = os.environ.get("CANDLEFLOW_WEAVIATE_URL", "")


@pytest.mark.integration
@pytest.mark.skipif(not WEAVIATE_URL, reason="CANDLEFLOW_WEAVIATE_URL is not set (no Weaviate server here)")
async def test_weaviate_store_roundtrip():
    from storage.patterns.weaviate_store import WeaviatePatternStore

    closes, times = _series("ETH-BTC_5m.csv.gz")
    vectors, metas = labelled_patterns(closes[:600], times[:600], "ETH-BTC", "5m")
    store = await WeaviatePatternStore.connect(WEAVIATE_URL, collection=f"CfTest{uuid.uuid4().hex[:10]}",
                                               grpc_port=int(os.environ.get("CANDLEFLOW_WEAVIATE_GRPC_PORT", "50051")))
    try:
        await store.add(vectors, metas)
        await store.add(vectors[:50], metas[:50])  # replay: replaces, does not duplicate
        assert await store.count() == len(metas)
        neighbours = await store.query(vectors[10], 5)
        assert neighbours[0].meta == metas[10] and neighbours[0].similarity == pytest.approx(1.0, abs=1e-4)
    finally:
        await store.drop()
        await store.close()
