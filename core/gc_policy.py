"""The worker's policy for Python's cyclic garbage collector.

Measured on the compute row (BENCHMARKS.md, 2026-12-06): with the interpreter's defaults, half of a
2,000-candle step went to the collector. A full collection scans every tracked object — ~290,000 after
the imports (torch, ONNX Runtime, Faust) and the model are loaded, ~130 ms each on this machine — and
the live series' churn (pending predictions, records) sets one off every couple of closes; the young
generation's threshold of 700 net allocations fires ~60 times per step, because a step builds tens of
thousands of records before it lets them go.

So a worker, once loaded, collects once and freezes what survives (:func:`gc.freeze`: never scanned again,
still freed by reference counting), and collects its young generation only after
:data:`YOUNG_THRESHOLD` net allocations. Whatever is frozen is never collected as a cycle: after a model
swap :func:`refreeze` unfreezes, collects (the old model's cycles go) and freezes again.

>>> import gc
>>> before = gc.get_threshold()
>>> settle()
>>> gc.get_freeze_count() > 0, gc.get_threshold()[0] == YOUNG_THRESHOLD
(True, True)
>>> gc.unfreeze(); gc.set_threshold(*before)
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "refreeze", "settle"]

# Net tracked allocations between young collections: above what one step builds and drops (~40,000
# objects for 2,000 candles), so a step's short-lived records die by reference count, unscanned.
YOUNG_THRESHOLD = 50_000


def settle(young: int = YOUNG_THRESHOLD) -> None:
    """Collect everything now, freeze the survivors out of later scans, raise the young threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


def refreeze() -> None:
    """Collect what was frozen too (a swapped-out model's cycles), then freeze the survivors again; nothing
    if nothing is frozen (a process that never settled keeps the interpreter's policy)."""
    if not gc.get_freeze_count():
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
