"""The HTTP layer: the one place that sends, throttles, retries, refreshes and raises errors.

Rules it enforces (the sync engine relies on them):

* every call has a timeout;
* reads (GET) are retried on connection errors and 5xx with capped exponential backoff;
* writes (POST/PUT/PATCH/DELETE) are never re-sent, except after a 503 (Brightpearl's throttle
  answer, meaning "not executed") or a 401 "Authorization token expired" (also not executed);
* a 503 waits out ``brightpearl-next-throttle-period`` (bounded attempts, then ThrottledError);
* every HTTP request is counted and the last ``ruid`` remembered;
* secrets never reach a message, excerpt or repr.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3.exceptions

from .auth import Auth, OAuthAuth, TokenCallback
from .errors import (
    AuthError,
    BrightpearlError,
    MalformedResponseError,
    ServerError,
    ThrottledError,
    TransportError,
    ValidationError,
    error_class_for_status,
    excerpt,
    redact,
)
from .throttle import PERIOD_HEADER, Throttle, parse_int_header

logger = logging.getLogger("brightpearl.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_EXPIRED_TEXT = "authorization token expired"

Timeout = float | tuple[float, float]


@dataclass
class ApiResponse:
    """An unwrapped successful answer: ``data`` is the ``response`` value (``None`` for ``{}``)."""

    status: int
    data: Any
    ruid: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: Any = None


def _error_messages(errors: list[Any]) -> str:
    parts = []
    for item in errors:
        if isinstance(item, dict):
            code, message = item.get("code"), item.get("message")
            parts.append(": ".join(str(p) for p in (code, message) if p) or json.dumps(item))
        else:
            parts.append(str(item))
    return "; ".join(parts) or "(no error details)"


def parse_envelope(
    status: int,
    text: str,
    *,
    method: str | None = None,
    path: str | None = None,
    ruid: str | None = None,
    secrets: list[str] | None = None,
) -> tuple[Any, Any]:
    """Turn one HTTP answer into ``(response value, whole JSON)`` or raise the typed error.

    Status is checked first (Brightpearl's advice), then the body: ``{"errors": [...]}`` →
    typed error with codes; ``{"response": ...}`` → the value; ``{}`` → ``None`` (status PUT,
    close, delete answer like that); anything else → :class:`MalformedResponseError` with an
    excerpt of the body, never a bare ``KeyError``.
    """
    body = redact(excerpt(text), secrets or [])
    ctx: dict[str, Any] = {
        "status": status,
        "body": body,
        "ruid": ruid,
        "method": method,
        "path": path,
        "secrets": secrets or [],
    }
    parsed, data = _read_json(text)
    errors = data.get("errors") if isinstance(data, dict) else None
    if status >= 500:
        raise _server_error(status, errors, ctx)
    if text and text.strip() and not parsed:
        raise MalformedResponseError(f"answer is not JSON: {body!r}", **ctx)
    if not parsed:
        if 200 <= status < 300:
            return None, None
        cls = error_class_for_status(status)
        raise cls(f"HTTP {status} with an empty body", **ctx)
    if not isinstance(data, dict):
        raise MalformedResponseError(f"answer is JSON but not an envelope object: {body!r}", **ctx)
    if errors is not None:
        if not isinstance(errors, list):
            raise MalformedResponseError(f"'errors' is not a list: {body!r}", **ctx)
        cls = error_class_for_status(status) if status >= 400 else ValidationError
        raise cls(_error_messages(errors), errors=errors, **ctx)
    if status >= 400:
        cls = error_class_for_status(status)
        detail = data.get("response")
        message = redact(str(detail), secrets or []) if detail is not None else f"HTTP {status}"
        raise cls(message, **ctx)
    if "response" in data:
        return data["response"], data
    if not data:
        return None, data
    raise MalformedResponseError(f"answer has no 'response' envelope: {body!r}", **ctx)


def _read_json(text: str) -> tuple[bool, Any]:
    """(True, value) for a JSON body, (False, None) for an empty or non-JSON one."""
    if text and text.strip():
        try:
            return True, json.loads(text)
        except ValueError:
            pass
    return False, None


def _server_error(status: int, errors: Any, ctx: dict[str, Any]) -> BrightpearlError:
    """A 503 is Brightpearl's throttle answer ("not executed"); any other 5xx a server error
    with Brightpearl's error codes when it sent some."""
    if status == 503:
        return ThrottledError("Brightpearl is throttling this account (HTTP 503)", **ctx)
    listed = errors if isinstance(errors, list) else None
    detail = _error_messages(listed) if listed is not None else (ctx["body"] or "(empty body)")
    return ServerError(f"Brightpearl server error: {detail}", errors=listed, **ctx)


def _walk_causes(exc: BaseException) -> list[Any]:
    seen: list[Any] = []
    stack: list[Any] = [exc]
    while stack and len(seen) < 20:
        item = stack.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        if isinstance(item, BaseException):
            stack.extend(item.args)
            stack.append(item.__cause__)
            stack.append(item.__context__)
            stack.append(getattr(item, "reason", None))
    return seen


def _never_sent(exc: BaseException) -> bool:
    """True if the failure happened before the request could reach the server."""
    for item in _walk_causes(exc):
        if isinstance(
            item,
            urllib3.exceptions.NewConnectionError
            | urllib3.exceptions.ConnectTimeoutError
            | ConnectionRefusedError
            | socket.gaierror,
        ):
            return True
    return False


def classify_transport_error(
    exc: requests.RequestException, *, method: str, path: str
) -> TransportError:
    """Translate a ``requests`` failure into :class:`TransportError` with the two facts that
    matter for writes: was it a timeout, and could the server have received the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        timeout, reached = True, False
    elif isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidHeader,
    ):
        timeout, reached = False, False
    elif isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.Timeout):
        timeout, reached = True, True
    else:
        timeout, reached = False, not _never_sent(exc)
    what = "timed out" if timeout else "connection failed"
    maybe = (
        "the request may have reached Brightpearl"
        if reached
        else "the request did not reach Brightpearl"
    )
    return TransportError(
        f"{what} ({type(exc).__name__}); {maybe}",
        timeout=timeout,
        may_have_reached_server=reached,
        method=method,
        path=path,
    )


@dataclass
class _Tries:
    """One logical request and what it has spent: retries after transport errors or 5xx
    (reads only), waits after a 503, and whether the OAuth token was refreshed for it."""

    method: str
    path: str
    idempotent: bool
    retries: int = 0
    throttled: int = 0
    refreshed: bool = False


class Transport:
    """Sends requests for one account. Not for direct use: see :class:`BrightpearlClient`."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        throttle: Throttle,
        *,
        timeout: Timeout = (5.0, 30.0),
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 8.0,
        max_throttle_retries: int = 5,
        token_url: str | None = None,
        on_token_refresh: TokenCallback | None = None,
        session: requests.Session | None = None,
        user_agent: str = "returns-brightpearl-connector",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.throttle = throttle
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.max_throttle_retries = max_throttle_retries
        self.token_url = token_url
        self.on_token_refresh = on_token_refresh
        self.session = session or requests.Session()
        self.user_agent = user_agent
        self._sleep = sleep
        self._lock = threading.Lock()
        self.request_count = 0
        self.throttled_count = 0
        self.token_refresh_count = 0
        self.last_ruid: str | None = None

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, auth={self.auth!r})"

    def _secrets(self) -> list[str]:
        return self.auth.secrets()

    def _count(self) -> None:
        with self._lock:
            self.request_count += 1

    def _backoff(self, attempt: int) -> float:
        base = min(self.retry_backoff * (2 ** (attempt - 1)), self.retry_backoff_max)
        return base * (0.5 + random.random() / 2)

    def _refresh_token(self, stale_access_token: str) -> None:
        auth = self.auth
        if not isinstance(auth, OAuthAuth) or not self.token_url:
            raise AuthError("access token expired and refreshing is not configured")

        def post(url: str, data: Mapping[str, str]) -> requests.Response:
            self._count()
            try:
                return self.session.post(
                    url,
                    data=dict(data),
                    headers={"Accept": "application/json", "User-Agent": self.user_agent},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise classify_transport_error(
                    exc, method="POST", path="(token endpoint)"
                ) from None

        auth.refresh(
            post,
            self.token_url,
            stale_access_token=stale_access_token,
            callback=self.on_token_refresh,
        )
        with self._lock:
            self.token_refresh_count += 1
        logger.info("brightpearl OAuth token refreshed")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        send_body: bool = False,
    ) -> ApiResponse:
        """Send one logical request (possibly several HTTP attempts) and unwrap the envelope."""
        method = method.upper()
        if not path.startswith("/"):
            path = "/" + path
        data = None
        if json_body is not None or send_body:
            data = json.dumps({} if json_body is None else json_body)
        tries = _Tries(method, path, idempotent=method in IDEMPOTENT_METHODS)
        while True:
            sent = self._send(tries, params, data)
            if sent is None:
                continue  # a read that failed in transport, tried again after a backoff
            resp, sent_token = sent
            if self._send_again(tries, resp, sent_token):
                continue
            return self._unwrap(tries, resp, sent_token)

    def _send(
        self, tries: _Tries, params: Mapping[str, Any] | None, data: str | None
    ) -> tuple[requests.Response, str] | None:
        """One HTTP attempt, once the throttle lets it go: the answer and the access token it
        carried, or None when a read failed in transport and is to be tried again."""
        self.throttle.before_request()
        headers = {
            "Accept": "application/json",
            "User-Agent": self.user_agent,
            **self.auth.headers(),
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        sent_token = getattr(self.auth, "access_token", "")
        self._count()
        started = time.monotonic()
        try:
            resp = self.session.request(
                tries.method,
                self.base_url + tries.path,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            err = classify_transport_error(exc, method=tries.method, path=tries.path)
            if tries.idempotent and tries.retries < self.max_retries:
                self._retry_later(tries, err)
                return None
            raise err from None
        self._observe(tries, resp, time.monotonic() - started)
        return resp, sent_token

    def _observe(self, tries: _Tries, resp: requests.Response, elapsed: float) -> None:
        """Remember the answer's ruid, log it, and feed its throttle headers to the throttle."""
        ruid = resp.headers.get("ruid")
        with self._lock:
            if ruid:
                self.last_ruid = ruid
        logger.debug(
            "%s %s -> %s in %.3fs ruid=%s remaining=%s",
            tries.method,
            tries.path,
            resp.status_code,
            elapsed,
            ruid,
            resp.headers.get("brightpearl-requests-remaining"),
        )
        self.throttle.observe(resp.headers)

    def _retry_later(self, tries: _Tries, reason: Any) -> None:
        tries.retries += 1
        wait = self._backoff(tries.retries)
        logger.info("retrying %s %s after %s (in %.2fs)", tries.method, tries.path, reason, wait)
        self._sleep(wait)

    def _send_again(self, tries: _Tries, resp: requests.Response, sent_token: str) -> bool:
        """Whether this answer means "send it again": a 503 (waited out, bounded), a 401
        "token expired" (refreshed once), or a 5xx to a read (backed off, bounded)."""
        status = resp.status_code
        if status == 503:
            self._throttled(tries, resp)
            return True  # before_request() waits out the shared pause
        if status == 401 and not tries.refreshed and self.auth.can_refresh:
            if TOKEN_EXPIRED_TEXT in (resp.text or "").lower():
                tries.refreshed = True
                self._refresh_token(sent_token)
                return True
        if status >= 500 and tries.idempotent and tries.retries < self.max_retries:
            self._retry_later(tries, f"HTTP {status}")
            return True
        return False

    def _throttled(self, tries: _Tries, resp: requests.Response) -> None:
        """Count a 503 and wait for the next period, or give up after `max_throttle_retries`."""
        with self._lock:
            self.throttled_count += 1
        tries.throttled += 1
        if tries.throttled > self.max_throttle_retries:
            period = parse_int_header(resp.headers, PERIOD_HEADER)
            raise ThrottledError(
                f"still throttled after {self.max_throttle_retries} waits",
                retry_after=None if period is None else period / 1000.0,
                status=resp.status_code,
                body=redact(excerpt(resp.text), self._secrets()),
                ruid=resp.headers.get("ruid"),
                method=tries.method,
                path=tries.path,
                secrets=self._secrets(),
            )
        wait = self.throttle.throttled_wait(resp.headers, tries.throttled)
        logger.info("throttled on %s %s; waiting %.2fs", tries.method, tries.path, wait)

    def _unwrap(self, tries: _Tries, resp: requests.Response, sent_token: str) -> ApiResponse:
        """The final answer's envelope, or its typed error (tokens redacted, including the one
        sent before a refresh)."""
        ruid = resp.headers.get("ruid")
        try:
            value, whole = parse_envelope(
                resp.status_code,
                resp.text,
                method=tries.method,
                path=tries.path,
                ruid=ruid,
                secrets=self._secrets(),
            )
        except AuthError as exc:
            if tries.refreshed:
                # The refresh rotated the tokens: redact the ones sent before it as well.
                exc.message = redact(
                    f"{exc.message} (after refreshing the OAuth token once)",
                    [*self._secrets(), sent_token],
                )
                exc.args = (exc.message,)
            raise
        return ApiResponse(
            status=resp.status_code, data=value, ruid=ruid, headers=resp.headers, raw=whole
        )
