"""The recovery watch's policy (streams/recovery_watch.py): wait while records arrive, try the remedies in order
after stalls, give up when they are used up; the agent that acts on it runs in every worker (agents/recovery.py)."""

import pytest

from streams.recovery_watch import RecoveryWatch


def test_a_recovery_that_moves_is_never_disturbed():
    watch = RecoveryWatch(stall_s=10.0)
    assert [watch.observe(t, progress=t) for t in range(0, 100, 5)] == ["wait"] * 20


def test_stalls_get_the_remedies_in_order_then_the_worker_gives_up():
    watch = RecoveryWatch(stall_s=10.0)
    verdicts = [watch.observe(t, progress=7) for t in (0, 9, 10, 19, 20, 30)]
    assert verdicts == ["wait", "wait", "reread", "wait", "rejoin", "give_up"]


def test_progress_between_stalls_does_not_give_the_remedies_back_but_an_ended_recovery_does():
    watch = RecoveryWatch(stall_s=10.0, remedies=("reread",))
    assert [watch.observe(t, progress=1) for t in (0, 10)] == ["wait", "reread"]
    assert [watch.observe(t, progress=2) for t in (11, 21)] == ["wait", "give_up"]  # moved, then stalled again
    assert watch.observe(22, progress=None) == "wait" and watch.tries == 0
    assert [watch.observe(t, progress=0) for t in (23, 33)] == ["wait", "reread"]


def test_no_recovery_means_nothing_to_watch():
    watch = RecoveryWatch(stall_s=1.0, remedies=())
    assert [watch.observe(t, progress=None) for t in range(10)] == ["wait"] * 10
    assert watch.observe(10, progress=0) == "wait" and watch.observe(11, progress=0) == "give_up"


@pytest.mark.parametrize("stall_s", [0.0, -1.0])
def test_bad_settings_are_refused(stall_s):
    with pytest.raises(ValueError):
        RecoveryWatch(stall_s)
