"""The one error hierarchy every returns-platform client raises.

Callers branch on the class, never on message text: `RateLimited` and `ServerError` /
`TransportError` are worth retrying later, the others are not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"
# Credential headers a platform (or anything posing as one) may echo back in an error body.
_SECRET_HEADERS = "|".join(
    re.escape(h) for h in ("x-authorization", "authorization", "x-api-key", "api-key")
)
_HEADER_QUOTED_RE = re.compile(
    r"""((["'])(?:""" + _SECRET_HEADERS + r""")\2\s*[:=]\s*(["']))(?:(?!\3).)*(\3)""",
    re.IGNORECASE,
)
_HEADER_LINE_RE = re.compile(
    r"((?:^|[\s,;{(\[])(?:" + _SECRET_HEADERS + r")\s*[:=]\s*)(?![\"'])(?:Bearer\s+)?[^\s,;}\])]+",
    re.IGNORECASE,
)


def redact(value: object, secrets: Iterable[str | None] = ()) -> object:
    """Remove the given secret values and echoed credential headers from a string, or from
    every string inside a decoded JSON body."""
    if isinstance(value, str):
        out = value
        for secret in secrets:
            if secret and len(secret) >= 4:
                out = out.replace(secret, REDACTED)
        out = _HEADER_QUOTED_RE.sub(r"\1" + REDACTED + r"\4", out)
        return _HEADER_LINE_RE.sub(r"\1" + REDACTED, out)
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and re.fullmatch(_SECRET_HEADERS, k, re.IGNORECASE)
            else redact(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value


class PlatformError(Exception):
    """A call to a returns platform failed. Carries what an operator needs to report it.

    Message and body are redacted here, at the source (``secrets``: the client's credential
    values), so an echoed API key never reaches a log, a sync event or an admin page."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        body: object = None,
        request_id: str = "",
        secrets: Iterable[str | None] = (),
    ):
        secrets = [s for s in secrets if s]
        message = str(redact(str(message), secrets))
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = str(redact(str(code or ""), secrets))
        self.body = redact(body, secrets)
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status:
            parts.insert(0, f"HTTP {self.status}")
        if self.code:
            parts.append(f"[{self.code}]")
        if self.request_id:
            parts.append(f"(request {self.request_id})")
        return " ".join(parts)


class AuthError(PlatformError):
    """401/403: wrong key, missing scope, unknown shop."""


class NotFound(PlatformError):
    """404, or the platform's own NOT_FOUND code."""


class ValidationError(PlatformError):
    """400/422: the platform refused the request as it stands (do not retry unchanged)."""


class MalformedPayload(PlatformError):
    """The platform answered with a body that is not in its documented shape (a list where an
    object belongs, …). Not retried: the same answer would come back."""


class Refused(ValidationError):
    """The platform answered (often with HTTP 200) but declined the action, in one of the shapes
    it documents for a refusal. `message` holds the platform's own words."""


class RateLimited(PlatformError):
    """429 after the client's own retries were used up."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BudgetExhausted(RateLimited):
    """The client's own daily call budget is spent; no request was sent."""


class ServerError(PlatformError):
    """5xx from the platform."""

    retryable = True


class TransportError(PlatformError):
    """No usable HTTP answer: connection refused, timeout, TLS, unreadable body."""

    retryable = True


class WebhookParseError(ValueError):
    """A webhook body we cannot read (not JSON, no return ID)."""


class UnknownPlatform(LookupError):
    """`get_platform` was asked for a kind that has no adapter."""
