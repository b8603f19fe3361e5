"""Load whatever a model directory holds: a bundle (``bundle.json``: every horizon, ensemble, optional
Mamba) or a single-horizon LightGBM model (``model.json`` + ``model.onnx``), with its distilled student
(``student/``, written by ``candleflow distill``) attached as ``model.student`` when it has one."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from models.metadata import BUNDLE_FILE, METADATA_FILE
from core.errors import ConfigError

if TYPE_CHECKING:
    from models.base import ServableModel

__all__ = ["DISTILL_FILE", "SERVING_TORCH_THREADS", "STUDENT_DIR", "load_model", "load_student", "serving_threads"]

log = logging.getLogger(__name__)

STUDENT_DIR = "student"  # a model's distilled student, inside its directory (training/distill.py)
DISTILL_FILE = "distill.json"  # the student's distillation report
# PyTorch intra-op threads in a process that serves (worker, replay): on the 2-core machine the Mamba step
# of 1,000 symbols cost 8.2 ms CPU at one thread and 16.8 ms at two (the whole ensemble 13.5 against 24 ms,
# wall 17 against 27-38 ms): the second thread spins against the event loop and the other processes.
SERVING_TORCH_THREADS = 1


def serving_threads() -> None:
    """Set the process's PyTorch intra-op threads for serving (:data:`SERVING_TORCH_THREADS`); called by the
    entry points that serve (worker, replay, the benchmarks that measure them), never by training, which
    sets its own (training/mamba.py). The same count everywhere also keeps replay's float sums the worker's."""
    import torch

    torch.set_num_threads(SERVING_TORCH_THREADS)


def _sequence_loader(providers: Sequence[str] | str | None, intra_op_threads: int) -> Any:
    def load(path: Path) -> Any:
        # Step mode: one scan step per candle with a state per series, ~85x cheaper than a 60-step
        # window pass (models/mamba/recurrent.py; the ONNX window model stays for offline use).
        from models.mamba.recurrent import MambaRecurrent

        return MambaRecurrent.load(path)

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
