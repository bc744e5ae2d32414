"""`SandboxServer`: the sandbox app on a threaded wsgiref server in a background thread.

The request handler knows the sandbox's `DropConnection`: the write has happened, and the socket is
closed without any answer, so the client sees a connection error ("commit-then-drop").
"""

from __future__ import annotations

import socket
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .app import DropConnection, SandboxApp, create_app


class _ServerHandler(ServerHandler):
    dropped = False

    def handle_error(self):
        if isinstance(sys.exc_info()[1], DropConnection):
            self.dropped = True
            return
        super().handle_error()

    def log_exception(self, exc_info):  # keep test output quiet; the app logs requests itself
        if not isinstance(exc_info[1], DropConnection):
            super().log_exception(exc_info)


class _RequestHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

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


class SandboxServer:
    """Start/stop a sandbox on `host:port` (port 0 = a free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, app: SandboxApp | None = None):
        self.app = app or create_app()
        self._httpd = _ThreadingWSGIServer((host, port), _RequestHandler)
        self._httpd.set_app(self.app)
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url_template(self) -> str:
        return f"{self.url}/public-api/{{account}}"

    @property
    def state(self):
        return self.app.state

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="brightpearl-sandbox",
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
        self._httpd.serve_forever(poll_interval=0.5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
