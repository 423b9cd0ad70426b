"""A real nats-server with JetStream for tests: Debian's binary, on a free port, its store in
the test's folder, so a test can stop and restart it and find its messages again."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from vigil.net import free_local_port

BINARY = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsServer:
    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_local_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [BINARY, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start listening")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


def start_nats(store: Path, in_ci: bool) -> NatsServer:
    if not Path(BINARY).exists():
        if in_ci:
            pytest.fail("nats-server is not installed (scripts/test.sh installs it)")
        pytest.skip("nats-server is not installed")
    server = NatsServer(store)
    server.start()
    return server
