"""Content-addressed model artifacts on disk: ``<root>/<sha256 of the directory's files>/``.

A model directory is stored once per content: the same files give the same digest and the same path,
so registering a model twice costs nothing and two versions can never share a directory by accident.
The copy is made under a temporary name and renamed into place (atomic on one filesystem), so a
worker loading ``<root>/<sha256>/`` sees the whole model or nothing. :meth:`ArtifactStore.open`
re-hashes before handing a path out: a file edited or damaged on disk is refused, not served.

>>> import pathlib, tempfile
>>> model = pathlib.Path(tempfile.mkdtemp()); (model / "model.json").write_text("{}")
2
>>> store = ArtifactStore(tempfile.mkdtemp())
>>> sha, path = store.store(model)
>>> store.store(model) == (sha, path), path.name == sha, store.open(sha) == path
(True, True, True)
>>> (path / "model.json").write_text("{ }")
3
>>> store.open(sha)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
core.errors.ConfigError: artifact ... is corrupt: its files hash to ..., not to its name
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from core.errors import ConfigError

__all__ = ["DEFAULT_ROOT", "ArtifactStore", "directory_digest", "manifest"]

DEFAULT_ROOT = Path("var/artifacts")
_CHUNK = 1 << 20


def _files(model_dir: Path) -> list[Path]:
    # Dot-files are left out: trainers write ".name.tmp" before an atomic rename, and such a leftover
    # is not part of the model.
    return sorted(p for p in model_dir.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model_dir).parts))


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def manifest(model_dir: str | Path) -> dict[str, dict[str, int | str]]:
    """``{relative path: {"sha256", "size"}}`` of every file of ``model_dir`` (sub-directories included)."""
    model_dir = Path(model_dir)
    return {p.relative_to(model_dir).as_posix(): {"sha256": _file_sha256(p), "size": p.stat().st_size}
            for p in _files(model_dir)}


def directory_digest(model_dir: str | Path) -> str:
    """SHA-256 over each file's relative path and content digest, in path order.

    Paths are part of it, so ``h1/model.onnx`` and ``h2/model.onnx`` swapped is another artifact.
    """
    files = manifest(model_dir)
    if not files:
        raise ConfigError(f"{model_dir}: no files to store as an artifact")
    h = hashlib.sha256()
    for rel, info in files.items():
        h.update(f"{rel}\0{info['sha256']}\n".encode())
    return h.hexdigest()


class ArtifactStore:
    """Model directories stored by content under ``root`` (created on first use)."""

    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root).resolve()  # events carry absolute paths: workers may run elsewhere

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ConfigError(f"not an artifact digest: {sha256!r}")
        return self.root / sha256

    def store(self, model_dir: str | Path) -> tuple[str, Path]:
        """Copy ``model_dir`` into the store (unless that content is there); returns ``(sha256, path)``."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ConfigError(f"{model_dir}: not a model directory")
        digest = directory_digest(model_dir)
        target = self.path(digest)
        if target.is_dir():
            self.open(digest)  # present: make sure it is intact before anyone is pointed at it
            return digest, target
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".incoming-{uuid.uuid4().hex}"
        try:
            for src in _files(model_dir):
                dst = tmp / src.relative_to(model_dir)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            # The copy is checked before it gets its name: the source may have changed under us.
            if directory_digest(tmp) != digest:
                raise ConfigError(f"{model_dir}: changed while it was being stored; try again")
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():  # not "another process stored the same content first"
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return digest, target

    def open(self, sha256: str) -> Path:
        """The path of a stored artifact, after checking that its files still hash to its name."""
        path = self.path(sha256)
        if not path.is_dir():
            raise ConfigError(f"artifact {sha256[:12]} is not in {self.root}")
        found = directory_digest(path)
        if found != sha256:
            raise ConfigError(f"artifact {path} is corrupt: its files hash to {found[:12]}, not to its name")
        return path
