"""Imports point down (docs/architecture.md): each package may import only the packages below it,
function-level (lazy) imports included. Imports under ``if TYPE_CHECKING:`` are not counted: they never
run, they only name a type for an annotation (the checkpoint class on ``streams.worker_state.WorkerState``)."""

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
    # offline work: never the runtime (streams/, agents/), whose entry points import training
    "training": {"core", "features", "schemas", "kafka_io", "models", "learning", "storage", "training"},
    # the runtime, the step and the entry points below the agents: never agents/ (they import streams/)
    "streams": {"core", "features", "schemas", "kafka_io", "models", "learning", "storage", "training", "streams"},
    # thin agents on the app and the step of streams/; attached by the worker, candleflow/worker.py
    "agents": {"core", "features", "schemas", "kafka_io", "models", "learning", "storage", "training", "streams",
               "agents"},
    # the top: the candleflow command and the worker put the runtime and the agents together
    "candleflow": OURS,
}


def _type_only(tree: ast.AST) -> set[int]:
    """The ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (not their ``else``)."""
    return {id(node) for block in ast.walk(tree)
            if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
            for statement in block.body for node in ast.walk(statement) if isinstance(node, (ast.Import, ast.ImportFrom))}


def imported_packages(path: Path) -> dict[str, int]:
    """Our top-level packages ``path`` imports at run time, each with the first line that does."""
    found: dict[str, int] = {}
    tree = ast.parse(path.read_text(), str(path))
    type_only = _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
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


def test_only_imports_under_type_checking_are_left_out(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agents.checkpoint import Checkpoint\n"
                      "else:\n    import candleflow\n\n\ndef lazy():\n    from streams import app\n")
    assert imported_packages(module) == {"candleflow": 5, "streams": 9}
