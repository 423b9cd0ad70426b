"""A reference webhook receiver: checks the signature, drops redeliveries by idempotency key,
and answers 2xx only once the delivery is recorded. It shows receivers what to do, and the
tests and the load benchmark run it on localhost; it can be told to fail or to go down.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vigil.actions.signing import verify_signature


@dataclass
class Delivery:
    key: str
    action: str
    body: dict[str, Any]
    received_at: float
    #: How many times this key arrived; more than one is a redelivery the receiver dropped.
    seen: int = 1


@dataclass
class _State:
    secret: str
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    bad_signatures: int = 0
    failures_left: int = 0
    failure_status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.server.receiver.accept(self.headers, body))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests and the benchmark count deliveries, not log lines."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        super().__init__(address, _Handler)
        self.receiver = receiver


class WebhookReceiver:
    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = _State(secret)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._address
        return f"http://{host}:{port}/hook"

    def start(self) -> WebhookReceiver:
        """Listen (again, on the same port after :meth:`stop`)."""
        self._server = _Server(self._address, self)
        self._address = (self._address[0], self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: connections are refused until :meth:`start`. What was received is kept,
        as a real receiver keeps it in its own database."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = None

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` deliveries with ``status`` instead of taking them."""
        with self._state.lock:
            self._state.failures_left = count
            self._state.failure_status = status

    def accept(self, headers: Any, body: bytes) -> int:
        state = self._state
        signed = verify_signature(
            state.secret,
            headers.get("X-Vigil-Timestamp", ""),
            body,
            headers.get("X-Vigil-Signature", ""),
        )
        with state.lock:
            if not signed:
                state.bad_signatures += 1
                return HTTPStatus.UNAUTHORIZED
            if state.failures_left > 0:
                state.failures_left -= 1
                return state.failure_status
            key = headers["X-Vigil-Idempotency-Key"]
            seen = state.deliveries.get(key)
            if seen is not None:
                seen.seen += 1  # a redelivery: acknowledged, not acted on twice
                return HTTPStatus.OK
            state.deliveries[key] = Delivery(
                key, headers["X-Vigil-Action"], json.loads(body), time.time()
            )
            return HTTPStatus.OK

    @property
    def deliveries(self) -> dict[str, Delivery]:
        with self._state.lock:
            return dict(self._state.deliveries)

    @property
    def duplicates(self) -> int:
        """Redeliveries seen (and dropped) across all keys."""
        with self._state.lock:
            return sum(d.seen - 1 for d in self._state.deliveries.values())

    @property
    def bad_signatures(self) -> int:
        with self._state.lock:
            return self._state.bad_signatures
