"""The worker's allocator policy (core/malloc_policy.py), each case in a fresh process: glibc keeps a large
freed block once its dynamic mmap threshold has risen, and gives it back under a fixed threshold."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import sys
import numpy as np
from core.malloc_policy import tune_malloc

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6

tuned = tune_malloc(mmap_threshold=256 * 1024) if sys.argv[1] == "tuned" else False
a = np.ones(4_000_000)  # 32 MB: mapped on its own; freeing it raises glibc's dynamic threshold
del a
base = rss_mb()
b = np.ones(2_500_000)  # 20 MB, written: untuned it comes from the heap, which keeps it when freed
del b
print(tuned, round(rss_mb() - base, 1))
"""


def kept_after_free(mode: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout.split()
    return out[0], float(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_large_freed_block_goes_back_to_the_system_under_a_fixed_threshold():
    untuned, kept_untuned = kept_after_free("default")
    tuned, kept_tuned = kept_after_free("tuned")
    assert (untuned, tuned) == ("False", "True")
    assert kept_untuned > 15, "glibc's default no longer keeps the block: the policy's reason is gone"
    assert kept_tuned < 5


def test_arenas_alone_change_no_threshold():
    out = subprocess.run([sys.executable, "-c", "from core.malloc_policy import tune_malloc; print(tune_malloc(arenas=2))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("True" if platform.libc_ver()[0] == "glibc" else "False")
