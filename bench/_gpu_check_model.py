"""The bundle and the inputs ``bench.gpu_check`` runs on: the bundle as found or completed in a temporary copy
(a Mamba member, and LightGBM if need be, trained there), the real windows and feature rows per size; and the
check's progress lines and its setup error."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BUNDLED", "Prepared", "Progress", "SetupError", "build_inputs", "prepare_bundle", "read_series"]

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "candles"


class SetupError(Exception):
    """The check cannot start (no GPU where one is required, no model to be had): one line, exit 2."""


class Progress:
    """Timestamped progress lines on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.started = time.perf_counter()
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[gpu-check {time.perf_counter() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Prepared:
    bundle_dir: Path
    notes: list[str]
    tmp: tempfile.TemporaryDirectory | None = None


def read_series(files: Sequence[Path], candles: int | None) -> list:
    from core.candle_files import read_candle_file

    return [read_candle_file(f).candles[:candles] for f in files]

def prepare_bundle(model_dir: Path, files: Sequence[Path], epochs: int, threads: int,
                   progress: Progress) -> Prepared:
    """The bundle to check: ``model_dir`` itself when it has LightGBM and ``mamba/``, else a temporary copy
    with what it lacks trained here (the model directory itself is never written to)."""
    from models.bundle import SEQUENCE_DIR
    from models.metadata import BUNDLE_FILE

    has_bundle = (model_dir / BUNDLE_FILE).is_file()
    if has_bundle and (model_dir / SEQUENCE_DIR / "model.json").is_file():
        return Prepared(model_dir, [f"bundle {model_dir}: LightGBM and Mamba members as found (nothing trained)"])
    tmp = tempfile.TemporaryDirectory(prefix="candleflow-gpu-check-")
    work = Path(tmp.name) / "bundle"
    notes = []
    names = ", ".join(f.name for f in files)
    series = read_series(files, None)
    if has_bundle:
        shutil.copytree(model_dir, work)
        notes.append(f"bundle {model_dir}: LightGBM as found; it has no {SEQUENCE_DIR}/ member")
    else:
        try:
            from training.train import train_horizons_on_series
        except ImportError as exc:
            tmp.cleanup()
            raise SetupError(
                f"no bundle at {model_dir} and LightGBM cannot be trained here ({exc}); train one where the project "
                "is installed (make demo, or candleflow train --data ... --out DIR) and pass --model-dir DIR") from None
        progress(f"no bundle at {model_dir}: training the LightGBM bundle (horizons 1..5) on {names} ...")
        train_horizons_on_series(series, work, progress=False)
        notes.append(f"no bundle at {model_dir}: LightGBM bundle trained here on {names} (as make demo would)")
    from training.mamba import train_mamba_on_series

    progress(f"training the Mamba member ({epochs} epoch(s), default architecture, CPU block) on {names} ...")
    info = train_mamba_on_series(series, work / SEQUENCE_DIR, progress=sys.stderr.isatty(), epochs=epochs,
                                 threads=threads, backend="torch")
    notes.append(f"Mamba member {info.version} trained here for this check: default architecture, {epochs} "
                 f"epoch(s) on {names}, {info.seconds:.0f} s (trained weights; a temporary copy of the bundle)")
    return Prepared(work, notes, tmp)


def build_inputs(files: Sequence[Path], candles: int | None, sizes: Sequence[int], progress: Progress
                 ) -> tuple[int, dict[int, dict[str, np.ndarray]]]:
    """(the number of real windows, per size n the float32 ``windows`` and their last steps as LightGBM ``rows``):
    60-step windows from the candle files, repeated past their number; a small size for the warm-up calls too."""
    progress(f"building real windows from {', '.join(f.name for f in files)} ...")
    from training.mamba_windows import build_windows

    windows = build_windows(read_series(files, candles)).x
    inputs = {}
    for n in sorted(set(sizes) | {min(8, min(sizes))}):
        w = np.ascontiguousarray(windows[np.arange(n) % len(windows)], dtype=np.float32)
        inputs[n] = {"windows": w, "rows": np.ascontiguousarray(w[:, -1, :])}
    return len(windows), inputs
