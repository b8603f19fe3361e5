"""The worker's policy for glibc's allocator: few arenas by default; large blocks mapped on their own on request.

Measured with the default model (2026-12-06, this 2-core machine):

- Arenas: glibc gives each thread that allocates its own arena, up to eight per core, and each keeps what it
  once held. The worker's threads (the executor a big batch runs in, aiokafka's, ONNX Runtime's) made the
  pipeline benchmark's worker peak at 887 MB; with two arenas, 834 MB, with no CPU cost seen. On by default.
- Large blocks: glibc serves a large block from its heap once a freed one has raised its *dynamic* mmap
  threshold, and the heap keeps it: after 2,000 symbols warmed up in-process, the live objects had grown by
  ~40 MB (tracemalloc) and the process by ~300 MB, ~140 MB of which ``malloc_trim`` gave back. A fixed
  threshold maps each large block on its own and returns it when freed: the warm-up peaked 60-75 MB lower
  (808 -> 747 MB at 256 KiB, 771 MB at 16 MiB), but the batch step paid for the page faults: 67-79 -> 101-103
  us of CPU per candle at 256 KiB, 77 us at 16 MiB. So it is off by default: a setting for a worker that
  must fit a memory limit more than it must be fast (``CANDLEFLOW_MALLOC_MMAP_THRESHOLD_KB``).

Only glibc has ``mallopt``: elsewhere (musl, macOS) :func:`tune_malloc` changes nothing and returns False.
``tests/core/test_malloc_policy.py`` shows a freed 20 MB block kept by default and given back under a threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["tune_malloc"]

_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc's malloc.h


def tune_malloc(arenas: int = 2, mmap_threshold: int = 0) -> bool:
    """Apply the policy to this process from now on: at most ``arenas`` arenas (0: glibc's default) and, when
    ``mmap_threshold`` (bytes) is set, blocks that large mapped on their own. False where the C library is
    not glibc (nothing changed)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    ok = True
    if arenas:
        ok = mallopt(_M_ARENA_MAX, arenas) == 1
    if mmap_threshold:
        ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1 and ok
    return ok
