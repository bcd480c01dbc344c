"""A local webhook receiver for tests: a threaded ``http.server`` on 127.0.0.1 (optionally TLS
with a trustme CA) that answers from a script of :class:`Reply` and records every request."""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme

SECRET_PATH = "/workflows/0123abcd/triggers/manual/paths/invoke?sig=s3cr3t-SIGNATURE-value"
"""A Teams-Workflows-like URL tail: the signature in it is a credential and must never be echoed."""


@dataclass
class Reply:
    status: int = 200
    body: str = "1"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A local webhook receiver. ``replies`` are used in order; after them, ``default``."""

    def __init__(self, replies: list[Reply] | None = None, *, tls: bool = False, default: Reply | None = None):
        self.replies = list(replies or [])
        self.default = default or Reply()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test); nothing to answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.ca_bundle: str | None = None
        if tls:
            ca = trustme.CA()
            self.ca_bundle = str(Path(tempfile.mkdtemp(prefix="notify-ca-")) / "ca.pem")
            ca.cert_pem.write_to_path(self.ca_bundle)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, name: str = "hook") -> str:
        return f"{self.base}/{name}{SECRET_PATH}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
