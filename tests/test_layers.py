"""Imports point down (docs/architecture.md): each package may import only the packages below it,
function-level (lazy) imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"core", "features", "schemas", "kafka_io", "models", "learning", "storage", "training", "streams", "agents", "bench",
        "candleflow"}
# package -> the packages of ours it may import (itself included)
ALLOWED = {
    "core": {"core"},
    "features": {"core", "features"},
    "schemas": {"core", "schemas"},
    "models": {"core", "features", "schemas", "models"},
    "learning": {"core", "features", "schemas", "models", "learning"},
    "storage": {"core", "features", "schemas", "models", "learning", "storage"},
    "kafka_io": {"core", "schemas", "kafka_io"},
    # offline work: never the runtime (streams/, agents/); only the entry points (candleflow/) import training
    "training": {"core", "features", "schemas", "kafka_io", "models", "learning", "storage", "training"},
    # the runtime and the step below the agents: never agents/ (they import streams/), nor offline training
    "streams": {"core", "features", "schemas", "kafka_io", "models", "learning", "storage", "streams"},
    # thin agents on the app and the step of streams/; attached by the worker, candleflow/worker.py
    "agents": {"core", "features", "schemas", "kafka_io", "models", "learning", "storage", "streams", "agents"},
    # the top: the candleflow command, the worker (which puts the runtime and the agents together), its web
    # views, the demo and replay
    "candleflow": OURS,
}


def imported_packages(path: Path) -> dict[str, int]:
    """Our top-level packages ``path`` imports, each with the first line that does."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in OURS:
                found.setdefault(top, node.lineno)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package):
    wrong = [f"{path.relative_to(REPO)}:{line} imports {top}"
             for path in sorted((REPO / package).rglob("*.py"))
             for top, line in imported_packages(path).items() if top not in ALLOWED[package]]
    assert not wrong, "\n".join(wrong)
