"""A worker killed at the dangerous moments of a checkpoint, then restarted, on the real broker.

The crash is forced, not hoped for: ``CANDLEFLOW_FAULT_KILL_AT`` makes the worker SIGKILL itself inside
its third checkpoint that writes, right after the checkpoint's outputs were acknowledged (the state not
yet written), after its learners' states were (the series' not yet sent), or after its series' states
were acknowledged on the changelog and written to the local store (the offsets not yet committed). The
restart uses the same app id and state directory, so with RocksDB it starts from a local store that may be
ahead of the committed offsets, and with the memory store from the changelog alone.

What must hold (against ``reference``, a run without failure): every prediction id and signal id
exists, every copy carries the reference's probability and features, nothing is refused as out of
order (a redelivered candle that the state already covers is skipped, one it does not is scored again),
and the restarted worker ends with the reference's features for every symbol.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from streams.broker import free_port
from streams.worker_process import WorkerProcess
from tests.integration.test_candle_pipeline import collect, publish
from tests.integration.test_scale_out import distinct_ids, reference, safe_get, same_floats, spread_symbols, steps  # noqa: F401
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("stage, store", [
    ("after-state", "rocksdb://"),  # local store and changelog ahead of the committed offsets
    ("after-outputs", "rocksdb://"),  # outputs out, state and offsets behind
    ("after-learners", "rocksdb://"),  # the learners written, the series not: the learners ahead of their series
    ("after-state", "memory://"),  # the same moment, recovered from the changelog
])
def test_sigkill_inside_a_checkpoint_then_restart_loses_and_changes_nothing(stage, store, app_settings, worker_factory,
                                                                           reference, tmp_path):
    candles = spread_symbols()
    symbols = sorted({c.symbol for c in candles})
    settings = app_settings(store=store, fault_kill_at=f"{stage}:3")
    victim = WorkerProcess(settings, tmp_path / "victim.log").start()
    feeder_error: list[Exception] = []

    def feed() -> None:  # a live pace, so that the worker checkpoints several times along the way
        try:
            for step in steps(candles):
                asyncio.run(publish(settings, step))
                time.sleep(0.05)
        except Exception as exc:  # reported by the test, not swallowed
            feeder_error.append(exc)

    try:
        assert victim.wait_ready()["model_version"] == reference["version"]
        feeder = threading.Thread(target=feed)
        feeder.start()
        wait_for(lambda: victim.process.poll() is not None, 120, f"the worker to kill itself {stage} of checkpoint 3")
        assert victim.process.returncode == -9, victim.process.returncode
    finally:
        victim.stop()
    restarted = worker_factory(settings.replace(fault_kill_at="", web={"port": free_port()}))
    feeder.join(120)
    assert not feeder_error, feeder_error

    expected = set(reference["predictions"])
    got = asyncio.run(collect(settings, distinct_ids(expected, reference["signals"]), timeout_s=120))
    ids = [p["id"] for p in got["predictions"]]
    assert set(ids) == expected, f"missing {len(expected - set(ids))} predictions, {len(set(ids) - expected)} unexpected"
    if stage == "after-learners":
        # The candles since the last complete checkpoint are scored again from their series with learners a
        # checkpoint ahead (which do not learn them twice): the online member may move their probability, so
        # a republished copy may differ, and a signal may be added; the first copy is the reference's.
        assert reference["signals"] <= {s["id"] for s in got["signals"]}
        first = {}
        for p in got["predictions"]:
            first.setdefault(p["id"], p)
        copies = first.values()
    else:  # redelivered copies carry the same id and the same content
        assert {s["id"] for s in got["signals"]} == reference["signals"]
        copies = got["predictions"]
    for p in copies:
        ref = reference["predictions"][p["id"]]
        assert p["prob_up"] == ref["prob_up"] and same_floats(p["features"], ref["features"]), p["id"]
    assert all(same_floats(p["features"], reference["predictions"][p["id"]]["features"]) for p in got["predictions"])
    assert not got["dead-letters"], got["dead-letters"][:3]
    last = candles[-1].open_time
    wait_for(lambda: all((safe_get(restarted, f"/features/{s}/5m") or {}).get("last_open_time") == last for s in symbols),
             what="every symbol caught up")
    for s in symbols:
        assert restarted.get(f"/features/{s}/5m") == reference["features"][s], s
    print(f"\n{stage} {store}: {len(ids)} predictions ({len(ids) - len(set(ids))} redelivered duplicates), "
          f"no dead letters")
