"""The recovery watch on the real broker (agents/recovery.py): a table recovery that receives nothing reads its
changelogs again instead of waiting forever (seen in CI: a worker given partitions back in a quick second
rebalance never received a changelog record, and served nothing after it).

The stall is forced, not hoped for: the restarted worker's consumer hands its first recovery none of the
changelog records (``CANDLEFLOW_FAULT_STALL_RECOVERY``: the partitions are paused again as Faust resumes them)."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.test_candle_pipeline import publish, real_candles
from tests.integration.test_scale_out import safe_get
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_a_stalled_recovery_reads_its_changelogs_again_and_restores_every_series(app_settings, worker_factory):
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

    second = worker_factory(settings.replace(fault_stall_recovery=True))  # ready only once the tables recovered
    log = second.log_path.read_text()
    assert "fault injection: the first table recovery gets none of its changelog records" in log
    assert "table recovery received nothing" in log and "reading" in log, "the watch did not act"
    assert {s: second.get(f"/features/{s}/5m") for s in symbols} == before
