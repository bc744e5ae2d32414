"""A hostile upstream for redaction tests: a real HTTP server on loopback that answers every
request with an error whose body echoes the request's headers and body back.

Styles: ``brightpearl`` (``{"errors": [{"code", "message"}]}``), ``platform`` (Loop/ReturnGO
error shapes plus the headers as a JSON object) and ``text`` (raw header lines, not JSON).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoServer:
    def __init__(self, status: int = 400, style: str = "brightpearl", prefix: str = ""):
        self.status, self.style, self.prefix = status, style, prefix
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace") if length else ""
                headers = dict(self.headers.items())
                server.requests.append({"path": self.path, "headers": headers, "body": body})
                lines = "\n".join(f"{k}: {v}" for k, v in headers.items())
                text = f"{server.prefix}rejected {self.command} {self.path}; headers {headers!r}; "
                text += f"body {body}"
                if server.style == "brightpearl":
                    payload = json.dumps({"errors": [{"code": "ECHO-001", "message": text}]})
                elif server.style == "platform":
                    payload = json.dumps(
                        {
                            "error": {"code": "ECHO", "message": text},
                            "message": text,
                            "headers": headers,
                            "request": lines,
                        }
                    )
                else:
                    payload = f"{server.prefix}{self.command} {self.path}\n{lines}\n\n{body}"
                data = payload.encode()
                self.send_response(server.status)
                ctype = "text/plain" if server.style == "text" else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EchoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
