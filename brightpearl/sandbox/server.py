"""`SandboxServer`: the Brightpearl sandbox app on the sandboxes' one HTTP core
(`sandboxes.http.HttpServer`), in a background thread.

The app may raise `DropConnection` after a write: the socket is closed without any answer, so
the client sees a connection error ("commit-then-drop").
"""

from __future__ import annotations

from sandboxes.http import HttpServer

from .app import SandboxApp, create_app


class SandboxServer(HttpServer):
    """Start/stop a sandbox on `host:port` (port 0 = a free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, app: SandboxApp | None = None):
        self.app = app or create_app()
        super().__init__(self.app, host=host, port=port, name="brightpearl-sandbox")

    @property
    def api_url_template(self) -> str:
        return f"{self.url}/public-api/{{account}}"

    @property
    def state(self):
        return self.app.state

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
