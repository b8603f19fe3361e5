"""The GPU path checked against the CPU path on one trained bundle, side by side (issue 15).

Run: ``python -m bench.gpu_check [--model-dir DIR] [--json] [--require-gpu]`` (on a GPU machine:
``make gpu-check``). For the CPU, always, and for CUDA when ``torch.cuda.is_available()``:

- **in use**: the ONNX Runtime providers each session really runs on (``session.get_providers()``, never
  the build's available list: docs/platform.md) for the LightGBM horizons and the Mamba graph; the Mamba
  block that runs the PyTorch window forward (mamba-ssm's kernels where ``models.mamba.backend`` finds them
  usable, else the pure-PyTorch block on the device) and the recurrent step mode (the worker's own
  ``models.mamba.recurrent.MambaRecurrent``, loaded with ``device="cpu"`` and ``device="cuda"``: on CUDA
  through ``Mamba.step`` of mamba-ssm when its kernels are used);
- **time to score** 1,000 and 10,000 symbols (``--sizes``): one call each, the best of ``--rounds`` (3),
  in milliseconds, numpy in and numpy out (host-device copies included, as a worker would pay them);
- **parity**, max abs difference GPU vs CPU per member on the largest size's outputs: LightGBM per horizon
  (limit 1e-5), the Mamba window forward through ONNX Runtime and through PyTorch, and the Mamba step mode
  (limit 1e-4); and on the CPU alone, Mamba ONNX vs PyTorch and step vs window (1e-4).

Inputs are real: 60-step windows built by the stream's own feature engine from the bundled candles
(``data/candles/*.csv.gz``), and their last steps as the LightGBM feature rows (the row a candle gives is
the last step of its window). Sizes larger than the number of windows repeat them.

The model: ``--model-dir`` (default ``Settings.from_env().model_dir``, the demo's). It is never written to.
Without a ``mamba/`` member a Mamba model is trained here (default architecture, ``--mamba-epochs`` on the
bundled candles, on the CPU block) into a temporary copy of the bundle, and the output says so; without a
bundle at all the LightGBM bundle is trained there too (as ``make demo`` would), which needs LightGBM.

Exit status: 0 when every parity check that ran passed (without CUDA: "no CUDA device: GPU column not run"),
1 when one failed, 2 when ``--require-gpu`` finds no CUDA device or no model can be had, 3 when
``--require-gpu`` finds CUDA but the ``gpu`` extra incomplete (ONNX Runtime on CPU, or no mamba-ssm kernels).
Progress goes to stderr, the table to stdout; ``--json`` adds the report as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LGBM_LIMIT", "MAMBA_LIMIT", "main", "run_check"]

LGBM_LIMIT = 1e-5   # float32 trees on either provider: the same thresholds, the same sums
MAMBA_LIMIT = 1e-4  # float32 both sides; the kernels (and cuBLAS) sum in another order
DEFAULT_SIZES = (1_000, 10_000)
DEFAULT_ROUNDS = 3
DEFAULT_MAMBA_EPOCHS = 2
FIGURE_BUDGET_S = 20.0  # no further timing rounds for one figure once its calls took this long
EXIT_OK, EXIT_PARITY, EXIT_SETUP, EXIT_INCOMPLETE = 0, 1, 2, 3
NO_CUDA_LINE = "no CUDA device: GPU column not run"
CPU_PROVIDER = "CPUExecutionProvider"
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


# --- the model ---------------------------------------------------------------------------------------

@dataclass
class Prepared:
    bundle_dir: Path
    notes: list[str]
    tmp: tempfile.TemporaryDirectory | None = None


def _read_series(files: Sequence[Path], candles: int | None) -> list:
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
    series = _read_series(files, None)
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


# --- members on a device -----------------------------------------------------------------------------

@dataclass
class Runner:
    """One member on one device: what runs it, and a call scoring n symbols."""

    label: str
    in_use: str
    on_gpu: bool
    call: Callable[[int], np.ndarray] | None = None
    error: str = ""


@dataclass
class Column:
    device: str
    title: str
    runners: dict[str, Runner] = field(default_factory=dict)
    times_ms: dict[str, dict[int, float]] = field(default_factory=dict)
    rounds: dict[str, dict[int, int]] = field(default_factory=dict)  # timed calls actually run per figure
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


MEMBERS = {
    "lgbm": "LightGBM, ONNX Runtime",
    "mamba_onnx": "Mamba window, ONNX Runtime",
    "mamba_torch": "Mamba window, PyTorch",
    "mamba_step": "Mamba step, PyTorch",
}


def _providers_of(session) -> tuple[str, bool]:
    used = session.get_providers()
    return ", ".join(used), used[0] != CPU_PROVIDER


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def _ready(label: str, build: Callable[[], Runner], warm_n: int) -> Runner:
    """``build()`` warmed up with one small call (arenas, cuBLAS handles, kernel compilation); a failure of
    either is reported in the table as the member's "in use" cell, not raised."""
    try:
        runner = build()
        runner.call(warm_n)
        return runner
    except Exception as exc:  # noqa: BLE001 - any provider/kernel failure is reported, not raised
        return Runner(label, f"failed: {_one_line(exc)}", False, error=str(exc))


def build_column(device: str, bundle_dir: Path, inputs: dict[int, dict[str, np.ndarray]], gpu_providers: str | None,
                 threads: int, progress: Progress) -> Column:
    """The four members on ``device`` ("cpu" or "cuda"), each warmed up with one small call."""
    import torch

    from models.bundle import SEQUENCE_DIR
    from models.direction import DirectionHorizons
    from models.mamba.backend import mamba_ssm_status
    from models.mamba.classifier import MambaClassifier, MambaConfig
    from models.mamba.model import MambaModel
    from models.mamba.recurrent import MambaRecurrent
    from models.metadata import BUNDLE_FILE, BundleConfig, horizon_dir

    gpu = device == "cuda"
    title = f"GPU ({torch.cuda.get_device_name(0)})" if gpu else "CPU"
    column = Column(device, title)
    providers = gpu_providers if gpu else "cpu"
    config = BundleConfig.from_json((bundle_dir / BUNDLE_FILE).read_text("utf-8"))
    mamba_dir = bundle_dir / SEQUENCE_DIR

    def lgbm() -> Runner:
        model = DirectionHorizons.load({h: bundle_dir / horizon_dir(h) for h in config.horizons}, providers, threads)
        in_use, on_gpu = _providers_of(model._session)  # the session itself: what it really runs on
        return Runner(MEMBERS["lgbm"], in_use, on_gpu, lambda n: model.predict_proba(inputs[n]["rows"]))

    def mamba_onnx() -> Runner:
        model = MambaModel.load(mamba_dir, providers, backend="onnx", intra_op_threads=threads)
        in_use, on_gpu = _providers_of(model._run.session)
        return Runner(MEMBERS["mamba_onnx"], in_use, on_gpu, lambda n: model.predict_proba(inputs[n]["windows"]))

    # The CPU classifier with the bundle's weights (sha256 checked); explicitly the CPU: "auto" would be CUDA here.
    portable = MambaRecurrent.load(mamba_dir, device="cpu")
    usable, reason = mamba_ssm_status()
    kernels = gpu and usable

    def on_device(backend: str):
        model = MambaClassifier(MambaConfig.from_dict(portable.metadata.config), backend=backend)
        model.load_state_dict(portable.model.state_dict(), strict=True)
        return model.to(device).eval()

    def mamba_torch(backend: str) -> Runner:
        model = on_device(backend)

        def call(n: int) -> np.ndarray:
            with torch.inference_mode():
                x = torch.from_numpy(inputs[n]["windows"]).to(device)
                return model(x).cpu().numpy().astype(np.float64)

        what = ("mamba-ssm kernels, cuda" if backend == "mamba_ssm" else
                f"PyTorch block, {device}" + (f" (mamba-ssm not used: {reason})" if gpu and not usable else ""))
        return Runner(MEMBERS["mamba_torch"], what, gpu, call)

    def mamba_step(backend: str) -> Runner:
        if gpu:
            # The serving step itself on CUDA, the block asked for (no fallback inside: a failure is reported here).
            stepper = MambaRecurrent.load(mamba_dir, device=device, backend=backend)
            what = "mamba-ssm Mamba.step, cuda" if backend == "mamba_ssm" else "PyTorch block step, cuda"
        else:
            stepper, what = portable, f"PyTorch block step, cpu ({portable.provider})"
        return Runner(MEMBERS["mamba_step"], what, gpu, _step_call(stepper, inputs, progress, device))

    backend = "mamba_ssm" if kernels else "torch"
    for key, build in (("lgbm", lgbm), ("mamba_onnx", mamba_onnx), ("mamba_torch", lambda: mamba_torch(backend)),
                       ("mamba_step", lambda: mamba_step(backend))):
        progress(f"{column.title}: loading {MEMBERS[key]} ...")
        runner = _ready(MEMBERS[key], build, min(inputs))
        if runner.call is None and kernels and key in ("mamba_torch", "mamba_step"):
            # mamba-ssm imported but its kernels failed here: the same weights on the PyTorch block, on CUDA.
            failed = runner.in_use
            runner = _ready(MEMBERS[key], lambda k=key: (mamba_torch if k == "mamba_torch" else mamba_step)("torch"),
                            min(inputs))
            runner.in_use += f" (mamba-ssm {failed})"
        if gpu and runner.call is not None and not runner.on_gpu:
            runner.call = None  # ONNX Runtime fell back to CPU: its figures would be CPU figures under "GPU"
        column.runners[key] = runner
        progress(f"{column.title}: {MEMBERS[key]}: {runner.in_use}")
    return column


def _step_call(stepper, inputs: dict[int, dict[str, np.ndarray]], progress: Progress, device: str
               ) -> Callable[[int], np.ndarray]:
    """A call stepping n series by one candle (the window's last step) from the state after its first 59:
    what the worker runs per candle. The states are prepared once, for the largest size."""
    largest = max(inputs)
    windows = inputs[largest]["windows"]
    states: dict[str, np.ndarray] = {}

    def call(n: int) -> np.ndarray:
        if "state" not in states:
            progress(f"{device}: stepping {largest:,} series through 59 candles for the step's state ...")
            state = stepper.initial_state(largest)
            for t in range(windows.shape[1] - 1):
                _, state = stepper.step(windows[:, t], state)
            states["state"] = state
        p, _ = stepper.step(inputs[n]["windows"][:, -1], states["state"][:n])
        return p

    return call


def time_column(column: Column, sizes: Sequence[int], rounds: int, progress: Progress,
                figure_budget_s: float = FIGURE_BUDGET_S) -> None:
    """Best of ``rounds`` single calls per member and size, fewer once one figure's calls have taken
    ``figure_budget_s`` (a CPU window pass of 10,000 symbols takes tens of seconds: the whole check stays
    within minutes; the rounds actually run are recorded). The largest size's output is kept for parity."""
    for key, runner in column.runners.items():
        if runner.call is None:
            continue
        column.times_ms[key], column.rounds[key] = {}, {}
        for n in sizes:
            progress(f"{column.title}: {runner.label}: {n:,} symbols, best of {rounds} ...")
            best, out, spent, done = float("inf"), None, 0.0, 0
            while done < rounds and (done == 0 or spent < figure_budget_s):
                t0 = time.perf_counter()
                out = runner.call(n)
                took = time.perf_counter() - t0
                best, spent, done = min(best, took), spent + took, done + 1
            column.times_ms[key][n] = best * 1000
            column.rounds[key][n] = done
            if n == max(sizes):
                column.outputs[key] = np.asarray(out, dtype=np.float64)


# --- parity ------------------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    limit: float
    value: float | None = None  # None: not run
    why: str = ""

    @property
    def result(self) -> str:
        if self.value is None:
            return "not run"
        return "PASS" if self.value <= self.limit else "FAIL"


def _diff(a: np.ndarray | None, b: np.ndarray | None, col: int | None = None) -> float | None:
    if a is None or b is None:
        return None
    if col is not None:
        a, b = a[:, col], b[:, col]
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def parity_checks(cpu: Column, gpu: Column | None, horizons: Sequence[int]) -> list[Check]:
    checks = []
    g = gpu.outputs if gpu is not None else {}
    why = "" if gpu is not None else "no CUDA device"

    def gpu_why(key: str) -> str:
        if gpu is None:
            return why
        runner = gpu.runners.get(key)
        return "" if runner and runner.call else f"GPU path not in use ({runner.in_use if runner else 'absent'})"

    for j, h in enumerate(horizons):
        checks.append(Check(f"LightGBM h{h}, GPU vs CPU", LGBM_LIMIT, _diff(g.get("lgbm"), cpu.outputs.get("lgbm"), j),
                            gpu_why("lgbm")))
    for key, name in (("mamba_onnx", "Mamba window ONNX, GPU vs CPU"), ("mamba_torch", "Mamba window PyTorch, GPU vs CPU"),
                      ("mamba_step", "Mamba step, GPU vs CPU")):
        checks.append(Check(name, MAMBA_LIMIT, _diff(g.get(key), cpu.outputs.get(key)), gpu_why(key)))
    c = cpu.outputs
    checks.append(Check("Mamba window ONNX vs PyTorch, CPU", MAMBA_LIMIT, _diff(c.get("mamba_onnx"), c.get("mamba_torch"))))
    checks.append(Check("Mamba step vs window, CPU", MAMBA_LIMIT, _diff(c.get("mamba_step"), c.get("mamba_torch"))))
    return checks


# --- the report --------------------------------------------------------------------------------------

def _table(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(max(map(len, rows)))]
    return [indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]


def _ms(column: Column | None, key: str, n: int, rounds: int) -> str:
    value = column.times_ms.get(key, {}).get(n) if column is not None else None
    if value is None:
        return "-"
    text = f"{value:,.1f}" if value >= 10 else f"{value:.3f}"
    done = column.rounds[key][n]
    return text if done == rounds else f"{text} (best of {done})"


def render(report: dict[str, Any], cpu: Column, gpu: Column | None, checks: list[Check], sizes: Sequence[int],
           rounds: int) -> str:
    lines = ["Candleflow GPU check: the CPU and GPU paths on one trained bundle (python -m bench.gpu_check)"]
    lines += [f"  model: {n}" for n in report["notes"]]
    lines += [f"  data:  {report['data']}", f"  stack: {report['stack']}",
              f"  CPU threads: {report['threads']} (ONNX Runtime intra-op and torch)", ""]
    gpu_title = gpu.title if gpu is not None else "GPU"
    rows = [["", "CPU", gpu_title], ["in use", "", ""]]
    for key, label in MEMBERS.items():
        rows.append([f"  {label}", cpu.runners[key].in_use, gpu.runners[key].in_use if gpu else "not run"])
    rows.append([f"time to score, ms per call (best of {rounds}, fewer past {FIGURE_BUDGET_S:.0f} s)", "", ""])
    for key, label in MEMBERS.items():
        for n in sizes:
            rows.append([f"  {label}, {n:,} symbols", _ms(cpu, key, n, rounds), _ms(gpu, key, n, rounds)])
    lines += _table(rows)
    lines.append("")
    prow = [["parity (max abs diff)", "value", "limit", "result"]]
    for c in checks:
        prow.append([f"  {c.name}", "-" if c.value is None else f"{c.value:.1e}", f"{c.limit:.0e}",
                     c.result + (f" ({c.why})" if c.value is None and c.why else "")])
    lines += _table(prow)
    lines.append("")
    lines.append(f"  served: {report['served']}")
    if gpu is None:
        lines.append(f"{NO_CUDA_LINE} ({report['cuda_reason']})")
    lines += [f"warning: {w}" for w in report["incomplete"]]
    lines.append(f"result: {report['result']} ({report['summary']})")
    return "\n".join(lines)


def _stack(torch) -> str:
    import onnxruntime as ort

    from models.mamba.backend import mamba_ssm_status

    cuda = torch.version.cuda or "none"
    usable, reason = mamba_ssm_status()
    try:
        from importlib.metadata import version

        ssm = f"mamba-ssm {version('mamba-ssm')}"
    except Exception:  # noqa: BLE001 - not installed
        ssm = "mamba-ssm not installed"
    return (f"python {platform.python_version()}, torch {torch.__version__} (CUDA {cuda}), onnxruntime "
            f"{ort.__version__} (build has: {', '.join(ort.get_available_providers())}), {ssm}; "
            f"its kernels: {'usable' if usable else reason}")


def _served(bundle_dir: Path) -> str:
    """What /models and /stats report for this bundle on this machine: the serving loader, default providers."""
    try:
        from models.loading import load_model

        stats = load_model(bundle_dir).stats()
        return ", ".join(f"{name} on {m['provider']}" for name, m in stats["members"].items()) + \
            " (models.loading.load_model, default providers: what /models and /stats report here)"
    except Exception as exc:  # noqa: BLE001
        return f"load_model failed: {type(exc).__name__}: {exc}"


def run_check(args: argparse.Namespace, progress: Progress) -> tuple[int, str, dict[str, Any]]:
    """(exit status, the table, the report as a dict)."""
    import torch

    cuda = torch.cuda.is_available()
    cuda_reason = ("" if cuda else f"torch {torch.__version__}: torch.cuda.is_available() is False")
    if args.require_gpu and not cuda:
        raise SetupError(f"--require-gpu: no CUDA device ({cuda_reason})")
    # Parity is a float32 comparison: no TF32 shortcuts on the GPU side.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    tmp = None
    try:
        if args.model_dir is None:
            from core.settings import Settings

            args.model_dir = Settings.from_env().model_dir
        files = sorted(Path(f) for f in args.data) if args.data else sorted(BUNDLED.glob("*.csv.gz"))
        prepared = prepare_bundle(Path(args.model_dir), files, args.mamba_epochs, args.threads, progress)
        tmp = prepared.tmp
        progress(f"building real windows from {', '.join(f.name for f in files)} ...")
        from training.mamba_windows import build_windows

        windows = build_windows(_read_series(files, args.candles)).x
        sizes = sorted(set(args.sizes))
        inputs = {}
        for n in sorted(set(sizes) | {min(8, min(sizes))}):
            w = np.ascontiguousarray(windows[np.arange(n) % len(windows)], dtype=np.float32)
            inputs[n] = {"windows": w, "rows": np.ascontiguousarray(w[:, -1, :])}
        from models.metadata import BUNDLE_FILE, BundleConfig

        # Sorted: DirectionHorizons' columns are in horizon order.
        horizons = sorted(BundleConfig.from_json((prepared.bundle_dir / BUNDLE_FILE).read_text("utf-8")).horizons)
        cpu = build_column("cpu", prepared.bundle_dir, inputs, None, args.threads, progress)
        time_column(cpu, sizes, args.rounds, progress)
        gpu = None
        if cuda:
            gpu = build_column("cuda", prepared.bundle_dir, inputs, args.gpu_providers, args.threads, progress)
            time_column(gpu, sizes, args.rounds, progress)
        progress("loading the bundle as the server does ...")
        served = _served(prepared.bundle_dir)
        checks = parity_checks(cpu, gpu, horizons)
        ran = [c for c in checks if c.value is not None]
        failed = [c for c in ran if c.result == "FAIL"]
        incomplete = []
        if gpu is not None:
            for key in ("lgbm", "mamba_onnx"):
                if not gpu.runners[key].on_gpu:
                    incomplete.append(f"{MEMBERS[key]} is not on a GPU provider ({gpu.runners[key].in_use}): "
                                      "the gpu extra's onnxruntime-gpu (and its CUDA libraries) is missing or unusable")
            if not gpu.runners["mamba_torch"].in_use.startswith("mamba-ssm"):
                incomplete.append(f"mamba-ssm's kernels are not in use ({gpu.runners['mamba_torch'].in_use})")
            incomplete += [f"{MEMBERS[k]} did not run on the GPU: {r.in_use}" for k, r in gpu.runners.items()
                           if k in ("mamba_torch", "mamba_step") and r.call is None]
        broken = [f"{MEMBERS[k]} on CPU: {r.in_use}" for k, r in cpu.runners.items() if r.call is None]
        if failed or broken:
            status, result = EXIT_PARITY, "FAIL"
        elif args.require_gpu and incomplete:
            status, result = EXIT_INCOMPLETE, "INCOMPLETE"
        else:
            status, result = EXIT_OK, "PASS"
        summary = (f"{len(ran) - len(failed)} of {len(ran)} parity checks run passed"
                   + (f"; {len(checks) - len(ran)} not run" if len(checks) > len(ran) else "")
                   + "".join(f"; {b}" for b in broken))
        report: dict[str, Any] = {
            "notes": prepared.notes, "bundle_dir": str(prepared.bundle_dir),
            "data": (f"{len(windows):,} real 60-step windows (their last steps: the LightGBM feature rows) from "
                     f"{', '.join(f.name for f in files)}; larger sizes repeat them"),
            "stack": _stack(torch), "threads": args.threads, "sizes": sizes, "rounds": args.rounds,
            "cuda": cuda, "cuda_reason": cuda_reason, "served": served, "incomplete": incomplete,
            "columns": {col.device: {"title": col.title,
                                     "in_use": {k: r.in_use for k, r in col.runners.items()},
                                     "on_gpu": {k: r.on_gpu for k, r in col.runners.items()},
                                     "ms_per_call": {k: {str(n): round(v, 4) for n, v in t.items()}
                                                     for k, t in col.times_ms.items()},
                                     "rounds": {k: {str(n): v for n, v in t.items()} for k, t in col.rounds.items()}}
                        for col in (cpu, gpu) if col is not None},
            "parity": [{"check": c.name, "max_abs_diff": c.value, "limit": c.limit, "result": c.result, "why": c.why}
                       for c in checks],
            "result": result, "summary": summary, "exit": status,
        }
        return status, render(report, cpu, gpu, checks, sizes, args.rounds), report
    finally:
        torch.set_num_threads(previous_threads)
        if tmp is not None:
            tmp.cleanup()


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be integers like 1000,10000, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="bundle to check (default: CANDLEFLOW_MODEL_DIR or the demo's var/models/candleflow)")
    parser.add_argument("--json", action="store_true", help="also print the report as one JSON object on the last line")
    parser.add_argument("--require-gpu", action="store_true",
                        help="exit 2 without a CUDA device, 3 when the gpu extra is incomplete there")
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES), help="symbols per call (default 1000,10000)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed calls per figure; the best counts")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (ONNX Runtime intra-op, torch); default 1, "
                        "as the worker")
    parser.add_argument("--gpu-providers", default=None,
                        help="ONNX Runtime providers of the GPU column (default: the server's preference "
                             "tensorrt,cuda,cpu; e.g. cuda,cpu to skip TensorRT's engine build)")
    parser.add_argument("--mamba-epochs", type=int, default=DEFAULT_MAMBA_EPOCHS,
                        help="epochs when a Mamba member has to be trained for the check")
    parser.add_argument("--data", nargs="*", default=None, help="candle files for the inputs (default: the bundled ones)")
    parser.add_argument("--candles", type=int, default=None, help="use only the first N candles of each file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or args.mamba_epochs < 1:
        parser.error("--rounds, --threads and --mamba-epochs must be at least 1")
    import logging

    from core.errors import ConfigError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    progress = Progress(not args.quiet)
    try:
        status, table, report = run_check(args, progress)
    except (SetupError, ConfigError) as exc:
        print(f"gpu-check: {exc}", file=sys.stderr)
        return EXIT_SETUP
    print(table, flush=True)
    if args.json:
        print(json.dumps(report, separators=(",", ":"), default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
