"""The members of ``bench.gpu_check`` on one device and what is measured of them: a :class:`Column` of
:class:`Runner` per member (what really runs it, warmed up), its timings, and the parity :class:`Check` of the
largest size's outputs, GPU vs CPU and on the CPU alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench._gpu_check_model import Progress

__all__ = ["CPU_PROVIDER", "FIGURE_BUDGET_S", "LGBM_LIMIT", "MAMBA_LIMIT", "MEMBERS", "Check", "Column", "Runner",
           "build_column", "parity_checks", "time_column"]

LGBM_LIMIT = 1e-5   # float32 trees on either provider: the same thresholds, the same sums
MAMBA_LIMIT = 1e-4  # float32 both sides; the kernels (and cuBLAS) sum in another order
FIGURE_BUDGET_S = 20.0  # no further timing rounds for one figure once its calls took this long
CPU_PROVIDER = "CPUExecutionProvider"


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
