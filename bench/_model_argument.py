"""The ``--model`` argument of the benchmarks that run a trained model, and its one-line refusal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.settings import Settings

__all__ = ["DEFAULT_MODEL", "add_model_argument", "missing_model", "parse_model_bench_args"]

# The settings' model directory (what `make demo` trains), from the repository root: the bench runs from any folder.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / Settings().model_dir


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the model directory (default: the demo's)")


def missing_model(model: Path) -> str | None:
    """What to print when ``model`` is not there (None: it is)."""
    if model.exists():
        return None
    return f"no model at {model}: train one first (make demo, or candleflow train --out {model})"


def parse_model_bench_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | None:
    """Add ``--model`` and ``--json`` to a benchmark's ``parser`` and parse ``argv``; None, with the one-line
    refusal printed, when the model is not there (the benchmark then exits 2)."""
    add_model_argument(parser)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args(argv)
    if (refusal := missing_model(args.model)) is not None:
        print(refusal, file=sys.stderr)
        return None
    return args
