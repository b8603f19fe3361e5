"""The recovery watch's policy (streams/recovery_watch.py): wait while records arrive, read again after a stall,
give up after a few reads again; the agent that acts on it runs in every worker (agents/recovery.py)."""

import pytest

from streams.recovery_watch import RecoveryWatch


def test_a_recovery_that_moves_is_never_disturbed():
    watch = RecoveryWatch(stall_s=10.0, max_rereads=1)
    assert [watch.observe(t, progress=t) for t in range(0, 100, 5)] == ["wait"] * 20


def test_a_stall_reads_again_then_gives_up_and_progress_starts_over():
    watch = RecoveryWatch(stall_s=10.0, max_rereads=2)
    verdicts = [watch.observe(t, progress=7) for t in (0, 9, 10, 19, 20, 30)]
    assert verdicts == ["wait", "wait", "reread", "wait", "reread", "give_up"]
    assert watch.observe(31, progress=8) == "wait" and watch.rereads == 0  # records again: a new stall starts from zero
    assert watch.observe(41, progress=8) == "reread"


def test_no_recovery_means_nothing_to_watch():
    watch = RecoveryWatch(stall_s=1.0, max_rereads=0)
    assert [watch.observe(t, progress=None) for t in range(10)] == ["wait"] * 10
    assert watch.observe(10, progress=0) == "wait" and watch.observe(11, progress=0) == "give_up"


@pytest.mark.parametrize("stall_s, max_rereads", [(0.0, 1), (-1.0, 1), (5.0, -1)])
def test_bad_settings_are_refused(stall_s, max_rereads):
    with pytest.raises(ValueError):
        RecoveryWatch(stall_s, max_rereads)
