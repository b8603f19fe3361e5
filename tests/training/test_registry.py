"""The registry against the real PostgreSQL and the real broker: round trips, state rules, events."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from storage.postgres import PostgresStore
from core.candle_files import read_candle_file
from core.errors import ConfigError
from training.artifacts import ArtifactStore
from training.dataset import BUNDLED
from training.model_events import EventPublisher, read_model_events
from training.registry import ModelRegistry
from training.train import train_on_series

pytestmark = pytest.mark.integration

SHARED_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_session_dsn():
    """One ``candleflow_test_<random>`` database for the session (tests use distinct model names); dropped after."""
    name = f"candleflow_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(SHARED_PG, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"shared PostgreSQL at 127.0.0.1:5432 unavailable: {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def small_models(tmp_path_factory) -> list[Path]:
    """Distinct tiny models (different slices of real candles -> different versions); a version belongs to
    one model name, so each test registers its own."""
    eth = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles
    dirs = []
    for i, end in enumerate((1200, 1400, 1600, 1800, 2000, 2200, 2400, 2600, 2800)):
        out = tmp_path_factory.mktemp(f"small-model-{i}")
        train_on_series([eth[:end]], out, progress=False, num_boost_round=5)
        dirs.append(out)
    return dirs


async def test_register_is_idempotent_and_round_trips(pg_session_dsn, small_models, tmp_path):
    store = PostgresStore(pg_session_dsn)
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"))
    try:
        name = f"m-{uuid.uuid4().hex[:6]}"
        version = await registry.register(small_models[3], name=name, evaluation={"horizons": {}})
        assert await registry.register(small_models[3], name=name) == version  # same content: same version
        with pytest.raises(ConfigError, match="already registered as model"):
            await registry.register(small_models[3], name="another-name")
        shown = await registry.show(version)
        assert (shown["name"], shown["status"], shown["traffic_share"]) == (name, "registered", 0.0)
        assert [d["action"] for d in shown["deployments"]] == ["register"]
        assert len(shown["evaluations"]) == 1
        artifact = await registry.artifact_dir(version)
        assert artifact.name == shown["artifact_sha256"] and (artifact / "model.onnx").exists()
        assert [r["version"] for r in await registry.list(name)] == [version]
        assert await registry.active(name) is None
    finally:
        await store.close()


async def test_activate_candidate_rollback_retire_publish_events(pg_session_dsn, small_models, tmp_path, app_settings):
    settings = app_settings()
    store = PostgresStore(pg_session_dsn)
    name = f"m-{uuid.uuid4().hex[:6]}"
    async with EventPublisher(settings) as publisher:
        registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"), publisher)
        try:
            a, b, c = [await registry.register(d, name=name) for d in small_models[:3]]
            await registry.activate(a, note="first")
            await registry.activate(b)
            cand = await registry.set_candidate(c, 0.25, note="retrained")
            assert (await registry.candidate(name))["version"] == c
            with pytest.raises(ConfigError, match="already active"):
                await registry.activate(b)
            with pytest.raises(ConfigError, match="is active"):
                await registry.retire(b)
            with pytest.raises(ConfigError, match="share"):
                await registry.set_candidate(a, 1.5)
            back = await registry.rollback(name)
            assert (back["version"], back["previous_version"]) == (a, b)
            assert (await registry.active(name))["version"] == a
            assert await registry.candidate(name) is None  # a rollback withdraws the experiment too
            with pytest.raises(ConfigError, match="no earlier active"):
                await registry.rollback(name)  # a was the first: nothing before it
            await registry.retire(c, note="experiment over")
            statuses = {r["version"]: r["status"] for r in await registry.list(name)}
            assert statuses == {a: "active", b: "retired", c: "retired"}
            shown = await registry.show(b)
            assert all(d["published_at"] for d in shown["deployments"] if d["action"] != "register")
            assert await registry.publish_pending() == 0
        finally:
            await store.close()
    events = [e for e in await read_model_events(settings) if e["name"] == name]
    assert [(e["action"], e["version"], e["previous_version"]) for e in events] == [
        ("activate", a, None), ("activate", b, a), ("candidate", c, None), ("rollback", a, b), ("retire", c, None)]
    assert events[2] == cand and events[2]["traffic_share"] == 0.25 and events[2]["reason"] == "retrained"
    for e in events:
        assert set(e) == {"event_id", "name", "version", "action", "artifact_dir", "traffic_share",
                          "previous_version", "reason", "time"}
        assert Path(e["artifact_dir"]).is_absolute() and (Path(e["artifact_dir"]) / "model.json").exists()


async def test_unpublished_changes_are_sent_later(pg_session_dsn, small_models, tmp_path, app_settings):
    settings = app_settings()
    store = PostgresStore(pg_session_dsn)
    name = f"m-{uuid.uuid4().hex[:6]}"
    artifacts = ArtifactStore(tmp_path / "artifacts")
    try:
        offline = ModelRegistry(store, artifacts)  # e.g. the broker was down: recorded, not published
        version = await offline.register(small_models[4], name=name)
        await offline.activate(version)
        async with EventPublisher(settings) as publisher:
            assert await ModelRegistry(store, artifacts, publisher).publish_pending() >= 1
        events = [e for e in await read_model_events(settings) if e["name"] == name]
        assert [(e["action"], e["version"]) for e in events] == [("activate", version)]
    finally:
        await store.close()


def test_a_damaged_artifact_is_refused(small_models, tmp_path):
    artifacts = ArtifactStore(tmp_path / "artifacts")
    sha, path = artifacts.store(small_models[0])
    (path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="corrupt"):
        artifacts.open(sha)
    with pytest.raises(ConfigError, match="corrupt"):
        artifacts.store(small_models[0])


async def test_a_versions_trades_come_from_the_outcomes_the_sink_stored(pg_session_dsn, tmp_path):
    """`candleflow models show V` -> "trades": the TRADE outcomes the PostgreSQL sink stored for V (labels
    and other versions left out)."""
    from learning.trades import trade_outcome

    store = PostgresStore(pg_session_dsn)
    registry = ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"))
    version = f"v-{uuid.uuid4().hex[:8]}"
    try:
        assert (await registry.trades(version))["trades"] == 0
        trades = [trade_outcome({"signal_id": f"s{i}", "symbol": "ETH-BTC", "timeframe": "5m", "open_time": 300_000 * i,
                                 "horizon": 1, "model_version": v, "pnl": pnl, "status": "closed"})
                  for i, (v, pnl) in enumerate([(version, 1.5), (version, -0.5), (version, 0.25), ("other", 9.0)])]
        label = {**trades[0], "id": "label-1", "source": "LABEL", "pnl": None, "direction_correct": True}
        await store.write("outcomes", [*trades, label])
        got = await registry.trades(version)
        assert (got["trades"], got["wins"], got["pnl_total"], got["hit_rate"]) == (3, 2, 1.25, 2 / 3)
        assert got["pnl_mean"] == pytest.approx(1.25 / 3)
    finally:
        await store.close()
