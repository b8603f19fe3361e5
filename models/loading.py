"""Load whatever a model directory holds: a bundle (``bundle.json``: every horizon, ensemble, optional
Mamba) or a single-horizon LightGBM model (``model.json`` + ``model.onnx``), with its distilled student
(``student/``, written by ``candleflow distill``) attached as ``model.student`` when it has one."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from models.metadata import BUNDLE_FILE, METADATA_FILE
from core.errors import ConfigError

if TYPE_CHECKING:
    from models.base import ServableModel

__all__ = ["DISTILL_FILE", "SERVING_TORCH_THREADS", "STUDENT_DIR", "cuda_may_be_present", "load_model", "load_student",
           "serving_threads"]

log = logging.getLogger(__name__)

STUDENT_DIR = "student"  # a model's distilled student, inside its directory (training/distill.py)
DISTILL_FILE = "distill.json"  # the student's distillation report
# PyTorch intra-op threads in a process that serves (worker, replay): on the 2-core machine the Mamba step
# of 1,000 symbols cost 8.2 ms CPU at one thread and 16.8 ms at two (the whole ensemble 13.5 against 24 ms,
# wall 17 against 27-38 ms): the second thread spins against the event loop and the other processes.
SERVING_TORCH_THREADS = 1


_serving = False  # serving_threads() was called: PyTorch, once imported, serves on SERVING_TORCH_THREADS


def serving_threads() -> None:
    """Set the process's PyTorch intra-op threads for serving (:data:`SERVING_TORCH_THREADS`); called by the
    entry points that serve (worker, replay, the benchmarks that measure them), never by training, which
    sets its own (training/mamba.py). The same count everywhere also keeps replay's float sums the worker's.
    NumPy's BLAS gets the same single thread. A process that has not imported PyTorch (a CPU worker steps
    Mamba in NumPy) gets PyTorch's set if the sequence loader imports it later."""
    global _serving
    from threadpoolctl import threadpool_limits

    # NumPy's BLAS too (the NumPy Mamba step's small products): its second thread costs more CPU than it saves
    # (the step of 2,000 series measured 28-31 us a series with OpenBLAS's default threads, 10.4 on one)
    threadpool_limits(limits=SERVING_TORCH_THREADS, user_api="blas")
    _serving = True
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(SERVING_TORCH_THREADS)


def cuda_may_be_present() -> bool:
    """Whether a CUDA device could serve, asked without importing PyTorch (~190 MB): PyTorch's own answer
    once it is imported; else an NVIDIA device node of the driver, unless CUDA_VISIBLE_DEVICES hides them all."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def _sequence_loader(providers: Sequence[str] | str | None, intra_op_threads: int) -> Any:
    def load(path: Path) -> Any:
        # Step mode: one scan step per candle with a state per series, ~60x cheaper than a 60-step
        # window pass (models/mamba/recurrent.py; the ONNX window model stays for offline use). On a
        # CPU the step runs as one ONNX Runtime graph built from the NumPy step's arrays (the same
        # weights and state layout, ~25 % cheaper than the NumPy step), and PyTorch is never imported.
        if not cuda_may_be_present():
            from models.mamba.onnx_step import OnnxMambaStep

            try:
                return OnnxMambaStep.load(path)
            except ConfigError as exc:  # exported before its arrays existed: the PyTorch step serves it
                log.info("Mamba steps in PyTorch: %s", exc)
        from models.mamba.recurrent import MambaRecurrent

        model = MambaRecurrent.load(path)
        if _serving:
            serving_threads()
        return model

    return load


def load_model(model_dir: str | Path, providers: Sequence[str] | str | None = None,
               intra_op_threads: int = 1, student: bool = True, tree_runtime: str = "auto") -> ServableModel:
    """A ready, warmed-up :class:`~models.base.ServableModel` for ``model_dir`` (a bundle or a single
    LightGBM, served as a one-member ensemble); ConfigError when it holds no usable model. With
    ``student``, its distilled student is attached (:func:`load_student`). ``tree_runtime`` (``auto``:
    LightGBM compiled on CPU where it can be, ``onnx``) applies to a bundle's horizon models
    (:meth:`models.direction.DirectionHorizons.load`)."""
    from models.bundle import ModelBundle
    from models.direction import DirectionModel

    model_dir = Path(model_dir)
    if (model_dir / BUNDLE_FILE).exists():
        model: ServableModel = ModelBundle.load(model_dir, providers, intra_op_threads,
                                                sequence_loader=_sequence_loader(providers, intra_op_threads),
                                                tree_runtime=tree_runtime)
    elif (model_dir / METADATA_FILE).exists():
        model = DirectionModel.load(model_dir, providers, intra_op_threads)
    else:
        raise ConfigError(f"{model_dir}: no model here (neither {BUNDLE_FILE} nor {METADATA_FILE}); "
                          "train one with `candleflow train`")
    if student:
        model.student = load_student(model, model_dir, providers, intra_op_threads, tree_runtime)
    return model


def load_student(model: ServableModel, model_dir: str | Path, providers: Sequence[str] | str | None = None,
                 intra_op_threads: int = 1, tree_runtime: str = "auto") -> ServableModel | None:
    """``model``'s distilled student from ``model_dir/student/`` with its report (``distill.json``) as
    ``distillation``; None when there is none, or when it cannot stand in for ``model`` (another teacher's,
    other horizons, not loadable: logged, the model serves without a student)."""
    path = Path(model_dir) / STUDENT_DIR
    if not ((path / BUNDLE_FILE).exists() or (path / METADATA_FILE).exists()):
        return None
    try:
        report = json.loads((path / DISTILL_FILE).read_text("utf-8")) if (path / DISTILL_FILE).exists() else None
        student = load_model(path, providers, intra_op_threads, student=False, tree_runtime=tree_runtime)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("%s: the student is not loadable, %s serves without one: %s", path, model.version, exc)
        return None
    teacher = report.get("teacher_version") if isinstance(report, dict) else None
    if teacher is not None and teacher != model.version:
        log.error("%s is the student of %s, not of %s: not used", path, teacher, model.version)
        return None
    if student.horizon != model.horizon or tuple(student.horizons) != tuple(model.horizons):
        log.error("%s serves horizons %s (main %s) but %s serves %s (main %s): not used", path, student.horizons,
                  student.horizon, model.version, model.horizons, model.horizon)
        return None
    student.distillation = report if isinstance(report, dict) else None
    log.info("%s has a distilled student, %s", model.version, student.version)
    return student
