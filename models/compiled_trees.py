"""The LightGBM horizon models compiled to native code (lleaves): the CPU tree runtime.

ONNX Runtime walks each tree node by node through a generic graph operator; lleaves compiles every tree
of a LightGBM text model into branches of machine code (LLVM). On this project's five-horizon set that
scores 1,000 rows 3x faster, 64 rows 4x and one row 1.6x (BENCHMARKS.md "Inference"), with LightGBM's own
float64 arithmetic: the output equals ``booster.predict`` bit for bit, and ONNX Runtime's float32 sums to
~2e-7. ONNX Runtime stays the reference and the GPU path; compiling is only ever an optimisation:

- the trees come from ``model.txt`` (training writes it beside ``model.onnx``, the same trees, its digest
  in ``model.json``), so a model without one, or whose file does not match, runs on ONNX Runtime;
- a compiled set is compared with the ONNX session on the model's reference rows at load and refused
  above :data:`PARITY_TOLERANCE`;
- compiling costs ~0.8 s per 100-tree model, so the machine code is cached per host (the CPU it was
  compiled for, lleaves' and LLVM's versions) under :data:`DEFAULT_CACHE_DIR`, named by the model text's
  digest: a worker's restart, a second worker or a replay loads it in milliseconds. The cache is
  written by this process only (an atomic rename), never read from the network.

>>> import numpy as np, tempfile, pathlib
>>> trees = compile_trees([model_dir], cache_dir=pathlib.Path(tempfile.mkdtemp()))
>>> trees.predict_proba(np.zeros((3, trees.n_features))).shape, trees.provider
((3, 1), 'lleaves-cpu')
>>> compile_trees([pathlib.Path(tempfile.mkdtemp())], cache_dir=None) is None   # no model.txt: not compiled
True
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.metadata import METADATA_FILE, NATIVE_FILE, ModelMetadata

__all__ = ["DEFAULT_CACHE_DIR", "PARITY_TOLERANCE", "SMALL_BATCH", "CompiledTrees", "compile_trees", "verified"]

log = logging.getLogger(__name__)

# Relative, like var/models and var/data: the working directory of the worker owns it.
DEFAULT_CACHE_DIR = Path("var/cache/compiled-trees")
# The compiled set must give ONNX Runtime's P(up) within this (float32 sums differ by ~2e-7).
PARITY_TOLERANCE = 1e-5
# Batches up to this many rows are scored through per-thread buffers (CompiledTrees._small).
SMALL_BATCH = 64


class CompiledTrees:
    """Several single-output LightGBM models compiled by lleaves: rows -> (n, k) P(up), float64."""

    provider = "lleaves-cpu"

    def __init__(self, models: Sequence[object], n_features: int) -> None:
        self._models = tuple(models)
        self.n_features = n_features
        # The compiled functions themselves, taking raw addresses: lleaves' predict() spends ~6 us per call
        # converting and checking what predict_proba already guarantees (and ctypes' data_as ~1 us per
        # pointer), which at one row made five horizons 2x slower than ONNX Runtime. (lleaves 1.3's
        # execution engine, pinned in pyproject.toml; without it, predict().)
        self._entries = tuple(_entry(m) for m in self._models)
        self._local = threading.local()  # each thread's small-batch buffers: scoring runs in executor threads too

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, k) P(up), column j from model j. ``X`` is rounded to float32 first, as the ONNX graph
        receives it: the exported thresholds are exact float32 values (training.export), so every split
        goes the way it goes in the served ONNX model."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected an array of shape (n, {self.n_features}), got {X.shape}")
        n = X.shape[0]
        if n <= SMALL_BATCH and all(e is not None for e in self._entries):
            return self._small(X, n)
        rows = np.ascontiguousarray(np.asarray(X, dtype=np.float32), dtype=np.float64)
        by_model = np.empty((len(self._models), n), dtype=np.float64)
        data, out, row_bytes = rows.ctypes.data, by_model.ctypes.data, n * by_model.itemsize
        for j, (model, entry) in enumerate(zip(self._models, self._entries)):
            if entry is None:
                by_model[j] = model.predict(rows, n_jobs=1)  # one thread: the worker's batches are small
            else:  # the compiled forest over rows [0, n): reads ``rows``, writes ``by_model[j]``, GIL released
                entry(data, out + j * row_bytes, 0, n)
        return np.ascontiguousarray(by_model.T)

    def _small(self, X: np.ndarray, n: int) -> np.ndarray:
        """A batch of at most SMALL_BATCH rows through this thread's own buffers, whose addresses are taken
        once: asking numpy for an address costs ~1 us, a third of a one-row forest call (``/predict``,
        a quiet market's steps, the latency budget's student)."""
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            rows32 = np.zeros((SMALL_BATCH, self.n_features), dtype=np.float32)
            rows = np.zeros((SMALL_BATCH, self.n_features), dtype=np.float64)
            by_model = np.zeros((len(self._models), SMALL_BATCH), dtype=np.float64)
            outs = tuple(by_model.ctypes.data + j * SMALL_BATCH * by_model.itemsize for j in range(len(self._models)))
            buffers = self._local.buffers = (rows32, rows, rows.ctypes.data, by_model, outs)
        rows32, rows, data, by_model, outs = buffers
        rows32[:n] = X  # float32 first, as above
        rows[:n] = rows32[:n]
        for entry, out in zip(self._entries, outs):
            entry(data, out, 0, n)
        return by_model[:, :n].T.copy()


# lleaves' forest function (float64): (data, results, first row, end row) -> None; raw addresses in.
_FOREST = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32)


def _entry(model: object) -> object | None:
    engine = getattr(model, "_execution_engine", None)
    try:
        return _FOREST(engine.get_function_address("forest_root")) if engine is not None else None
    except Exception:  # another lleaves: its public predict() serves
        return None


def _host_key() -> str:
    """What compiled machine code depends on besides the model: the CPU and the compiler's versions."""
    import lleaves
    import llvmlite
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features().flatten()
    text = f"{llvm.get_host_cpu_name()}|{features}|{llvmlite.__version__}|{getattr(lleaves, '__version__', '?')}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _compile_one(native: Path, digest: str, cache_dir: Path | None, host: str) -> object:
    import lleaves

    model = lleaves.Model(model_file=str(native))
    if cache_dir is None:
        model.compile()
        return model
    cached = cache_dir / f"{digest[:32]}-{host}.o"
    if cached.exists():
        model.compile(cache=str(cached))
        return model
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only working directory: compiled at every load, still served
        log.warning("compiled trees are not cached: %s cannot be created (%s)", cache_dir, exc)
        model.compile()
        return model
    # lleaves writes the cache file in place; another process may be reading the final name, so each
    # process compiles into its own file and renames it (atomic on one file system).
    partial = cache_dir / f".{cached.name}.{os.getpid()}.tmp"
    try:
        model.compile(cache=str(partial))
        os.replace(partial, cached)
    finally:
        partial.unlink(missing_ok=True)
    return model


def compile_trees(model_dirs: Sequence[Path], cache_dir: Path | None = DEFAULT_CACHE_DIR) -> CompiledTrees | None:
    """The models of ``model_dirs`` (each ``model.json`` + ``model.txt``) compiled, in that order, or None
    (with the reason logged) when they cannot be: lleaves missing, a model without its text or whose text
    does not match its metadata, a compile error. ``cache_dir`` None compiles without caching."""
    try:
        host = _host_key()
    except ImportError as exc:
        log.info("LightGBM runs on ONNX Runtime: lleaves is not importable (%s)", exc)
        return None
    models, n_features = [], 0
    for model_dir in model_dirs:
        native = Path(model_dir) / NATIVE_FILE
        try:
            metadata = ModelMetadata.from_json((Path(model_dir) / METADATA_FILE).read_text("utf-8"))
            text = native.read_bytes()
        except (OSError, ValueError) as exc:
            log.info("LightGBM runs on ONNX Runtime: %s has no readable %s (%s)", model_dir, NATIVE_FILE, exc)
            return None
        digest = hashlib.sha256(text).hexdigest()
        if digest != metadata.native_sha256:
            log.warning("LightGBM runs on ONNX Runtime: %s does not match %s (sha256 %s, expected %s)",
                        native, METADATA_FILE, digest[:12], metadata.native_sha256[:12] or "none")
            return None
        n_features = len(metadata.feature_names)
        try:
            models.append(_compile_one(native, digest, cache_dir, host))
        except Exception as exc:  # lleaves/LLVM raise their own untyped errors; ONNX Runtime still serves
            log.warning("LightGBM runs on ONNX Runtime: compiling %s failed: %s", native, exc)
            return None
    return CompiledTrees(models, n_features)


def verified(trees: CompiledTrees, reference_rows: np.ndarray, expected: np.ndarray) -> bool:
    """Whether ``trees`` give ``expected`` (ONNX Runtime's P(up) on ``reference_rows``) within
    :data:`PARITY_TOLERANCE`; logged when not.

    >>> import numpy as np, pathlib, tempfile
    >>> trees = compile_trees([model_dir], cache_dir=None)
    >>> X = np.zeros((2, trees.n_features))
    >>> verified(trees, X, trees.predict_proba(X)), verified(trees, X, trees.predict_proba(X) + 0.01)
    (True, False)
    """
    got = trees.predict_proba(reference_rows)
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if not diff <= PARITY_TOLERANCE:
        log.warning("LightGBM runs on ONNX Runtime: the compiled trees differ from it by %.3g on the "
                    "reference rows (tolerance %g)", diff, PARITY_TOLERANCE)
        return False
    return True
