"""A worker in a child process: how the demo and the integration tests run the real thing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from streams.broker import _die_with_parent
from core.errors import ConfigError
from core.settings import Settings, to_env

__all__ = ["WorkerProcess", "settings_env"]


class WorkerProcess:
    """``candleflow worker`` in a child process with the given settings (as CANDLEFLOW_* variables)."""

    def __init__(self, settings: Settings, log_path: Path):
        self.settings, self.log_path = settings, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        # The child's environment, not a setting read here: it inherits this one's (PATH, Python's and the
        # libraries' variables, CANDLEFLOW_* not in ``settings``) with the settings on top, and reads it once.
        env = {**os.environ, **settings_env(self.settings)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "candleflow", "worker"], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            # Its own session: a Ctrl-C at the terminal reaches the parent,
                                            # which stops the worker before the broker it flushes to.
                                            preexec_fn=_die_with_parent, start_new_session=True)
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            return self.get("/health")
        except (OSError, ValueError):
            return None

    def get(self, path: str, expect: int = 200) -> Any:
        """GET a web view of this worker and decode its JSON; the status must be ``expect``."""
        url = f"http://{self.settings.web.host}:{self.settings.web.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        if status != expect:
            raise ValueError(f"GET {path}: status {status}, expected {expect}: {body[:200]!r}")
        return json.loads(body)

    def wait_ready(self, timeout_s: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ConfigError(f"the worker exited at start; its log: {self.log_path}\n{tail_file(self.log_path)}")
            health = self.health()
            if health and health.get("ready"):
                return health
            time.sleep(0.2)
        raise TimeoutError(f"the worker was not ready within {timeout_s:.0f} s; its log: {self.log_path}")

    def stop(self, timeout_s: float = 20.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a child process (which reads it with the one parser).

    Every field; of the sections that say ``env_inherit_defaults`` (storage, retrain) only the fields set
    away from their defaults, so a section the caller left at its defaults keeps what the inherited
    environment says of it, as the child would read it (the tests and benchmarks point a child at their
    PostgreSQL that way)."""
    return to_env(settings, section_defaults=False)


def tail_file(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
