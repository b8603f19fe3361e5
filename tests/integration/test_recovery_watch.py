"""The recovery watch on the real broker (agents/recovery.py): a table recovery that receives nothing gets its
changelogs read again, then a new rebalance, instead of waiting forever (seen in CI: a worker given partitions
back in a quick second rebalance never received a changelog record, and served nothing after it).

The stall is forced, not hoped for: the restarted worker's consumer hands its first recovery none of the
changelog records (``CANDLEFLOW_FAULT_STALL_RECOVERY=N``: the partitions are paused again the first N times
Faust resumes them; 1 is undone by reading again, 2 only by the rejoin's new recovery)."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.test_candle_pipeline import publish, real_candles
from tests.integration.test_scale_out import safe_get
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("resumes, remedies", [
    (1, ["reading 4 changelog partitions again"]),
    (2, ["reading 4 changelog partitions again", "rejoining the group for a new rebalance"]),
])
def test_a_stalled_recovery_is_remedied_and_restores_every_series(resumes, remedies, app_settings, worker_factory):
    settings = app_settings(store="memory://", recovery_stall_s=2.0)  # memory: a restart recovers from the changelog
    candles = real_candles(40)
    symbols = sorted({c.symbol for c in candles})
    last = candles[-1].open_time
    first = worker_factory(settings)
    asyncio.run(publish(settings, candles))
    wait_for(lambda: all((safe_get(first, f"/features/{s}/5m") or {}).get("last_open_time") == last for s in symbols),
             what="every candle in its series")
    before = {s: first.get(f"/features/{s}/5m") for s in symbols}
    first.stop()  # a clean stop: its last checkpoint writes every series to the changelog

    second = worker_factory(settings.replace(fault_stall_recovery=resumes))  # ready only once the tables recovered
    log = second.log_path.read_text()
    assert f"fault injection: the first table recovery gets none of its changelog records for {resumes} resumes" in log
    assert [r for r in remedies if r in log] == remedies, "the watch did not act as it should"
    assert "stopping the worker" not in log
    assert {s: second.get(f"/features/{s}/5m") for s in symbols} == before


def test_a_recovery_the_remedies_cannot_move_stops_the_worker_with_a_clear_error(app_settings, worker_factory):
    settings = app_settings(store="memory://", recovery_stall_s=2.0)
    candles = real_candles(10)
    first = worker_factory(settings)
    asyncio.run(publish(settings, candles))
    wait_for(lambda: (safe_get(first, "/stats") or {}).get("predictions") == len(candles), what="every candle scored")
    first.stop()

    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="exited at start"):  # never ready: the third stall stops it
        worker_factory(settings.replace(fault_stall_recovery=3))
    log = next(p for p in settings.data_dir.parent.glob("worker-*.log") if "fault injection" in p.read_text()).read_text()
    assert "rejoining the group" in log and "stopping the worker" in log and "RecoveryStalled" in log
