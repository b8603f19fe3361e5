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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._gpu_check_measure import (FIGURE_BUDGET_S, LGBM_LIMIT, MAMBA_LIMIT, MEMBERS, Check, Column,
                                      build_column, parity_checks, time_column)
from bench._gpu_check_model import BUNDLED, Progress, SetupError, build_inputs, prepare_bundle

__all__ = ["LGBM_LIMIT", "MAMBA_LIMIT", "main", "run_check"]

DEFAULT_SIZES = (1_000, 10_000)
DEFAULT_ROUNDS = 3
DEFAULT_MAMBA_EPOCHS = 2
EXIT_OK, EXIT_PARITY, EXIT_SETUP, EXIT_INCOMPLETE = 0, 1, 2, 3
NO_CUDA_LINE = "no CUDA device: GPU column not run"


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
        sizes = sorted(set(args.sizes))
        n_windows, inputs = build_inputs(files, args.candles, sizes, progress)
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
            "data": (f"{n_windows:,} real 60-step windows (their last steps: the LightGBM feature rows) from "
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
