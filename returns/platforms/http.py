"""A small JSON-over-HTTP client shared by the platform clients.

Headers are built in one place, every call has a timeout, and every failure becomes a typed
`returns.platforms.errors` exception carrying status, body and the remote request ID.

Rate limits are waited out, not turned into failed runs: a client that knows its platform's
documented limit (`rate_limit=(calls, seconds)`, Loop 300 a minute) paces itself below it, and a
429 — Loop sends no Retry-After — is retried after Retry-After or a backoff capped at half the
window, for as long as three of those windows (a key shared with another app can still be full).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from .errors import (
    AuthError,
    NotFound,
    PlatformError,
    RateLimited,
    ServerError,
    TransportError,
    ValidationError,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
REQUEST_ID_HEADERS = ("x-request-id", "x-amzn-requestid", "x-amz-apigw-id", "x-amzn-trace-id")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})
CREDENTIAL_HEADERS = frozenset({"x-authorization", "authorization", "x-api-key", "api-key"})


def path_segment(value: Any) -> str:
    """One URL path segment built from outside data (a return ID from a webhook or an API
    answer), percent-encoded so it can never add segments, a query or another host."""
    text = str(value)
    if text in ("", ".", ".."):
        raise ValueError(f"{text!r} is not a usable ID in a URL path")
    return quote(text, safe="")


class CallPacer:
    """At most `calls` sends in any `seconds`: waits (with the client's sleep) before a send that
    would go over. A call counts from when it was sent until its answer came back — the platform
    counted it somewhere in between, so its window never holds more than ours — plus 5 %. Per
    client; the platform's own 429 covers other clients of the same key."""

    def __init__(
        self,
        calls: int,
        seconds: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.calls, self.seconds = max(int(calls), 1), float(seconds) * 1.05
        self.sleep, self.clock = sleep, clock
        self._counted: list[list[float]] = []  # one [moment] per recent call
        self._lock = threading.Lock()

    def wait(self) -> list[float]:
        """Block until a send fits; record it. Pass the result to `answered` afterwards."""
        while True:
            with self._lock:
                now = self.clock()
                self._counted = [c for c in self._counted if c[0] > now - self.seconds]
                if len(self._counted) < self.calls:
                    call = [now]
                    self._counted.append(call)
                    return call
                delay = min(c[0] for c in self._counted) + self.seconds - now
            self.sleep(max(delay, 0.001))

    def answered(self, call: list[float]) -> None:
        with self._lock:
            call[0] = self.clock()


class JsonHttpClient:
    """One client per platform account; no module-level state."""

    user_agent = "returns-brightpearl-connector/0.1"

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff: float = 1.0,
        backoff_cap: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        url_guard: Callable[[str], None] | None = None,
        rate_limit: tuple[int, float] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        # Called before every request with its URL; raises to stop credentials going there
        # (the connector passes its PLATFORM_URL_ALLOWLIST rule).
        self.url_guard = url_guard
        self._headers = {"Accept": "application/json", "User-Agent": self.user_agent, **headers}
        # Credential values: every error this client raises is redacted of them.
        self.secrets = [str(v) for k, v in headers.items() if k.lower() in CREDENTIAL_HEADERS and v]
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.session = session or requests.Session()
        self.sleep = sleep
        self.calls = 0  # requests actually sent, retries included
        self.rate_limited_waits = 0  # 429s answered and waited out
        # The platform's documented limit: pace below it, and wait 429s out for 3 windows.
        self.pacer = CallPacer(*rate_limit, sleep=self.sleep) if rate_limit else None
        self.rate_window = float(rate_limit[1]) if rate_limit else 0.0

    # -- hooks -------------------------------------------------------------------------------
    def before_send(self, method: str, url: str) -> None:
        """Called before every attempt (ReturnGO spends its daily budget here)."""

    def error_code_and_message(self, body: Any, fallback: str) -> tuple[str, str]:
        return "", fallback

    # -- plumbing ----------------------------------------------------------------------------
    def url_for(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            self._check_same_origin(path_or_url)
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url.lstrip("/"))

    def _check_same_origin(self, url: str) -> None:
        """Never send the API key to a host the platform named in a response (nextPageUrl)."""
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise TransportError(
                f"refusing to follow a URL on another host: {theirs.netloc}", secrets=self.secrets
            )

    def _delay(self, attempt: int, retry_after: float | None, cap: float | None = None) -> float:
        cap = self.backoff_cap if cap is None else cap
        if retry_after is not None:
            return min(max(retry_after, 0.0), max(cap, self.backoff_cap))
        base = min(self.backoff * (2**attempt), cap)
        return base / 2 + random.uniform(0, base / 2)  # jitter: spread concurrent retries

    def _wait_out_429(self, attempt: int, waited: float, retry_after: float | None) -> float:
        """Seconds to wait before retrying a 429, or 0 to give up. Without a known window:
        `max_retries` backoffs. With one: backoff capped at half the window (or Retry-After),
        for as long as three windows in all."""
        if not self.rate_window:
            return self._delay(attempt, retry_after) if attempt < self.max_retries else 0.0
        delay = self._delay(attempt, retry_after, cap=self.rate_window / 2)
        return delay if waited + delay <= 3 * self.rate_window else 0.0

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
        send_body: bool = True,
    ) -> Any:
        """Send one call; return the decoded JSON (or text). Raise a typed error on failure."""
        method = method.upper()
        url = self.url_for(path_or_url)
        if self.url_guard is not None:
            self.url_guard(url)
        data = None
        headers = dict(self._headers)
        if json_body is not None and send_body:
            data = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        attempt, waited = 0, 0.0
        while True:
            paced = self.pacer.wait() if self.pacer is not None else None
            self.before_send(method, url)
            self.calls += 1
            try:
                response = self.session.request(
                    method, url, params=params, data=data, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                if method in IDEMPOTENT_METHODS and attempt < self.max_retries:
                    self.sleep(self._delay(attempt, None))
                    attempt += 1
                    continue
                raise TransportError(
                    f"{method} {url}: {exc.__class__.__name__}: {exc}", secrets=self.secrets
                ) from exc
            finally:
                if paced is not None:
                    self.pacer.answered(paced)
            status = response.status_code
            retry_after = _retry_after(response)
            delay = self._wait_out_429(attempt, waited, retry_after) if status == 429 else 0
            if delay:
                logger.info("rate limited on %s %s; waiting %.2fs", method, url, delay)
                self.sleep(delay)
                self.rate_limited_waits += 1
                attempt, waited = attempt + 1, waited + delay
                continue
            if status >= 500 and method in IDEMPOTENT_METHODS and attempt < self.max_retries:
                self.sleep(self._delay(attempt, retry_after))
                attempt += 1
                continue
            return self._decode(method, url, response, retry_after)

    def _decode(self, method: str, url: str, response: requests.Response, retry_after) -> Any:
        status = response.status_code
        request_id = next(
            (response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), ""
        )
        text = response.text
        try:
            body: Any = response.json() if text.strip() else None
        except ValueError:
            body = text
        if status < 400:
            return body
        code, message = self.error_code_and_message(body, f"{method} {urlsplit(url).path}")
        kwargs = {
            "status": status,
            "code": code,
            "body": body,
            "request_id": request_id,
            "secrets": self.secrets,
        }
        if status in (401, 403):
            raise AuthError(message, **kwargs)
        if status == 404:
            raise NotFound(message, **kwargs)
        if status == 429:
            raise RateLimited(message, retry_after=retry_after, **kwargs)
        if status in (400, 409, 422):
            raise ValidationError(message, **kwargs)
        if status >= 500:
            raise ServerError(message, **kwargs)
        raise PlatformError(message, **kwargs)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None
