"""What both returns-platform sandboxes share on top of the sandboxes' one HTTP core
(`sandboxes.http`: the threaded server, request headers and body, JSON answers): request
parsing, a sliding-window rate limiter, the common control API, and a webhook sender.

Framework-free on purpose (no Django): the sandboxes run in tests, the demo and benchmarks.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from sandboxes.http import HttpServer, json_payload, read_body, request_headers, status_line

logger = logging.getLogger(__name__)


class HttpError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(f"{status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self, default: Any = None) -> Any:
        if not self.body.strip():
            return default
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, {"error": f"invalid JSON: {exc}"}) from exc


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class RateLimiter:
    """Sliding windows: `[(max_calls, seconds), …]`; every window must have room."""

    def __init__(self, limits: list[tuple[int, float]] | None = None):
        self.limits = list(limits or [])
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def configure(self, limits: list[tuple[int, float]] | None) -> None:
        with self._lock:
            self.limits = [(int(n), float(s)) for n, s in (limits or [])]
            self._calls.clear()

    def hit(self) -> float | None:
        """Record a call; None when allowed, else seconds until a slot frees up."""
        with self._lock:
            now = time.monotonic()
            longest = max((s for _, s in self.limits), default=0)
            while self._calls and self._calls[0] <= now - longest:
                self._calls.popleft()
            for max_calls, seconds in self.limits:
                recent = [t for t in self._calls if t > now - seconds]
                if len(recent) >= max_calls:
                    return max(recent[0] + seconds - now, 0.01)
            self._calls.append(now)
            return None


def utcnow() -> datetime:
    return datetime.now(UTC)


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> dict:
    """Deliver one webhook over real HTTP; the outcome is returned, never raised."""
    if not url.startswith(("http://", "https://")):
        return {"url": url, "status": None, "error": "webhook URL must be http(s)"}
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - checked above
    for name, value in {"Content-Type": "application/json", **headers}.items():
        request.add_header(name, value)
    record = {"url": url, "body": body.decode(), "headers": headers, "at": utcnow().isoformat()}
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - test URL
            record["status"] = answer.status
    except urllib.error.HTTPError as exc:
        record["status"] = exc.code
    except OSError as exc:
        record["status"] = None
        record["error"] = str(exc)
    return record


class SandboxServer:
    """Base class: subclasses implement `admit`, `rate_limited`, `serve`, `control` and
    `webhook_body`, and keep their state under `self.lock`. `start()` returns self; `.url` is
    then the base URL."""

    # What `configure` sets besides `rate_limit`: each platform lists its own attributes.
    OPTIONS: tuple[str, ...] = ()
    # The field naming the platform's record in each entry of `actions` ("return_id", …).
    RECORD_KEY = "id"
    # The event `fire_webhook` sends when none is named.
    DEFAULT_EVENT = ""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.limiter = RateLimiter()
        self.requests_seen: list[tuple[str, str]] = []
        self.rate_limited_seen = 0  # API calls answered 429 (scripted or over the limit)
        self._http: HttpServer | None = None
        self.throttle_next = 0
        self.webhook_url = ""
        self.deliveries: list[dict] = []
        self.actions: list[dict] = []
        self._delivery_threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if not self._http:
            raise RuntimeError("sandbox not started")
        return self._http.url

    def _bind(self) -> HttpServer:
        self._http = HttpServer(self.wsgi_app, self.host, self.port, name=type(self).__name__)
        return self._http

    def start(self) -> SandboxServer:
        self._bind().start()
        return self

    def stop(self) -> None:
        if self._http:
            self._http.stop()
            self._http = None

    def serve_forever(self, on_ready=None) -> None:
        """Foreground mode for `python -m …sandbox`; `on_ready(url)` once the port is bound."""
        server = self._bind()
        if on_ready:
            on_ready(self.url)
        server.serve_forever()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- state shared by every platform sandbox ------------------------------------------------
    def reset(self) -> None:
        """Forget the writes, deliveries and requests seen (subclasses forget their records
        too; the configuration is kept)."""
        with self.lock:
            self.actions = []
            self.deliveries = []
            self.requests_seen = []
            self._ids = itertools.count(1001)

    def configure(self, **options: Any) -> None:
        """Set `rate_limit` and any of `OPTIONS`; an unknown option is a ValueError."""
        with self.lock:
            if "rate_limit" in options:
                self.limiter.configure(options.pop("rate_limit"))
            for name in self.OPTIONS:
                if name in options:
                    setattr(self, name, options.pop(name))
            if options:
                raise ValueError(f"unknown sandbox options: {sorted(options)}")

    def _record(self, action: str, key: Any, body: Any = None) -> None:
        """Remember one write the API accepted (`GET /_sandbox/actions`)."""
        self.actions.append(
            {
                "action": action,
                self.RECORD_KEY: key,
                "body": body,
                "at": utcnow().isoformat(timespec="seconds"),
            }
        )

    # -- control API shared by every platform sandbox ------------------------------------------
    def public_config(self) -> dict:
        """What GET /_sandbox/config shows (subclasses add their credentials and URLs)."""
        return {"webhook_url": getattr(self, "webhook_url", "")}

    def control_common(self, request, path: str, body: dict):
        """Reset, configure, inspect actions and webhook deliveries: the same for every
        platform. Returns a Response, or None when the path is the subclass's to answer."""
        if request.method == "POST" and path == "/reset":
            self.reset()
            return Response(200, {"ok": True})
        if request.method == "POST" and path == "/config":
            try:
                self.configure(**body)
            except ValueError as exc:
                raise HttpError(400, {"error": str(exc)}) from exc
            return Response(200, {"ok": True})
        if request.method == "GET" and path == "/config":
            return Response(200, self.public_config())
        if request.method == "GET" and path == "/actions":
            with self.lock:
                return Response(200, {"actions": list(self.actions)})
        if request.method == "GET" and path == "/deliveries":
            with self.lock:
                return Response(200, {"deliveries": list(self.deliveries)})
        return None

    # -- webhooks ------------------------------------------------------------------------------
    def webhook_body(self, key: Any, event: str) -> bytes:  # pragma: no cover - abstract
        """The exact bytes the platform sends for this record and event."""
        raise NotImplementedError

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        """Headers a delivery carries besides Content-Type (a platform's signature)."""
        return {}

    def fire_webhook(self, key: Any, event: str | None = None, url: str | None = None) -> dict:
        """Deliver one webhook now, over HTTP, to `url` or the configured URL; returns the
        delivery record."""
        target = url or self.webhook_url
        if not target:
            raise ValueError("no webhook URL configured")
        body = self.webhook_body(key, event or self.DEFAULT_EVENT)
        return self.deliver(target, body, self.webhook_headers(body), wait=True)

    def _auto_fire(self, key: Any, event: str) -> None:
        """After a change: send the event from a thread when a webhook URL is configured."""
        if self.webhook_url:
            body = self.webhook_body(key, event)
            self.deliver(self.webhook_url, body, self.webhook_headers(body), wait=False)

    def deliver(self, url: str, body: bytes, headers: dict[str, str], wait: bool) -> dict | None:
        """Send now (wait=True, returns the record) or from a thread (state changes made by API
        calls: the receiver may call back into this sandbox)."""
        if wait:
            record = post_json(url, body, headers)
            with self.lock:
                self.deliveries.append(record)
            return record

        def run():
            record = post_json(url, body, headers)
            with self.lock:
                self.deliveries.append(record)

        thread = threading.Thread(target=run, daemon=True)
        self._delivery_threads.append(thread)
        thread.start()
        return None

    def wait_for_deliveries(self, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        for thread in list(self._delivery_threads):
            thread.join(max(deadline - time.monotonic(), 0))
        self._delivery_threads = [t for t in self._delivery_threads if t.is_alive()]
        with self.lock:
            return list(self.deliveries)

    # -- WSGI ----------------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        """Every platform's request path: record it, answer the control API, let the platform
        check the credentials (`admit`), spend a call (a scripted `throttle_next` 429 first,
        then the sliding windows), then `serve` the API call."""
        with self.lock:
            self.requests_seen.append((request.method, request.path))
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        self.admit(request)
        with self.lock:
            throttled = self.throttle_next > 0
            self.throttle_next -= 1 if throttled else 0
        if throttled or self.limiter.hit() is not None:
            with self.lock:
                self.rate_limited_seen += 1
            raise self.rate_limited()
        return self.serve(request)

    def _control(self, request: Request) -> Response:
        path = request.path[len("/_sandbox") :].rstrip("/")
        body = request.json(default={}) or {}
        common = self.control_common(request, path, body)
        if common is not None:
            return common
        return self.control(request, path, body)

    # What each platform answers; subclasses implement these.
    def admit(self, request: Request) -> None:  # pragma: no cover - abstract
        """Raise the platform's HttpError for a wrong path or wrong credentials."""
        raise NotImplementedError

    def rate_limited(self) -> HttpError:  # pragma: no cover - abstract
        raise NotImplementedError

    def serve(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def control(self, request: Request, path: str, body: dict) -> Response:  # pragma: no cover
        """The platform's own `/_sandbox/…` calls (after the common ones)."""
        raise NotImplementedError

    def wsgi_app(self, environ, start_response):
        request = Request(
            method=environ["REQUEST_METHOD"].upper(),
            path=environ.get("PATH_INFO", "/") or "/",
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers=request_headers(environ),
            body=read_body(environ),
        )
        try:
            response = self.route(request)
        except HttpError as exc:
            response = Response(exc.status, exc.body, exc.headers)
        except Exception as exc:  # a sandbox bug must still answer
            logger.exception("sandbox error")
            response = Response(500, {"error": f"sandbox error: {exc}"})
        payload = json_payload(response.body)
        out_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        out_headers += list(response.headers.items())
        start_response(status_line(response.status), out_headers)
        return [payload]


def parse_limits(text: str | None) -> list[tuple[int, float]]:
    """'300/60,2000/86400' → [(300, 60.0), (2000, 86400.0)] for the command lines."""
    limits = []
    for part in (text or "").split(","):
        if part.strip():
            calls, seconds = part.split("/")
            limits.append((int(calls), float(seconds)))
    return limits
