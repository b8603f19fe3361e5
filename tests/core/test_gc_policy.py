"""The worker's collector policy (core/gc_policy.py): frozen objects are skipped, not lost for good."""

import gc
import weakref

import pytest

from core.gc_policy import YOUNG_THRESHOLD, refreeze, settle


class Model:
    """Stands for a loaded model: an object in a reference cycle, as many real ones are."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture()
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_settled_worker_skips_what_it_loaded_and_a_swap_frees_the_old_model(restore_gc) -> None:
    model = Model()
    gone = weakref.ref(model)
    settle()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 0
    del model  # swapped out: only its own cycle holds it now
    gc.collect()
    assert gone() is not None  # frozen: a full collection does not look at it
    refreeze()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # what survived is frozen again


def test_refreeze_leaves_a_process_that_never_settled_alone(restore_gc) -> None:
    gc.unfreeze()
    refreeze()
    assert gc.get_freeze_count() == 0
