"""The one HTTP core of every sandbox: a threaded stdlib WSGI server in a background thread
(with "commit-then-drop": an app may raise `DropConnection` after a write, and the socket is
closed without an answer), and the parts of a WSGI request and answer every sandbox reads and
writes the same way. Framework-free: no Django.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

logger = logging.getLogger(__name__)

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    207: "Multi-Status",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    414: "Request-URI Too Long",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class DropConnection(Exception):
    """Raised by an app after a write so the server closes the socket without answering."""


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, 'Status')}"


def request_headers(environ) -> dict[str, str]:
    """Request headers with lower-case names (Content-Type included)."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def json_payload(body: Any) -> bytes:
    """None → empty, bytes as they are, anything else as JSON."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, default=str).encode("utf-8")


class _ServerHandler(ServerHandler):
    dropped = False

    def handle_error(self):
        if isinstance(sys.exc_info()[1], DropConnection):
            self.dropped = True
            return
        super().handle_error()

    def log_exception(self, exc_info):  # keep test output quiet; the apps log requests themselves
        if not isinstance(exc_info[1], DropConnection):
            super().log_exception(exc_info)


class _RequestHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        logger.debug("sandbox: " + format, *args)

    def handle(self):
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self
        handler.run(self.server.get_app())
        if handler.dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class HttpServer:
    """A WSGI app on `host:port` (port 0 = a free port), bound at once; `start()` serves from a
    background thread, `serve_forever()` in the foreground (the `python -m …` commands)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, name: str = "sandbox"):
        self._httpd = _ThreadingWSGIServer((host, port), _RequestHandler)
        self._httpd.set_app(app)
        self.host = host
        self.port = self._httpd.server_address[1]
        self.name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() would wait forever on a server never started
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
