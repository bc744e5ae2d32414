"""The one error hierarchy of the Brightpearl client.

Every failure the client raises is a :class:`BrightpearlError`, so callers (the sync engine,
Celery tasks) can decide *retry / give up / flag for staff* from the class alone, and log the
context (status, ``ruid``, method, path, a short body excerpt) without touching the response.
Secrets are removed from messages and excerpts before an error is built (see :func:`redact`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

BODY_EXCERPT_CHARS = 500

# Values of these keys are secrets wherever they appear in a body (token endpoint answers,
# echoed requests). Matches JSON ("key": "value") and form (key=value) spellings.
_SECRET_KEYS = (
    "access_token",
    "refresh_token",
    "client_secret",
    "accountToken",
    "account_token",
    "staffToken",
    "staff_token",
    "accessToken",
    "refreshToken",
    "clientSecret",
)
# Request headers that carry credentials, as a server may echo them back in an error body:
# JSON ("brightpearl-account-token": "…"), header lines (Authorization: Bearer …) or repr
# ('brightpearl-staff-token': '…').
_SECRET_HEADERS = (
    "brightpearl-account-token",
    "brightpearl-staff-token",
    "authorization",
    "x-authorization",
    "x-api-key",
)
_KEYS_ALT = "|".join(_SECRET_KEYS)
_HEADERS_ALT = "|".join(re.escape(h) for h in _SECRET_HEADERS)
_SECRET_JSON_RE = re.compile(r'("(?:' + _KEYS_ALT + r')"\s*:\s*")[^"]*(")')
_SECRET_FORM_RE = re.compile(r"((?:^|[&?\s])(?:" + _KEYS_ALT + r")=)[^&\s]*")
_HEADER_QUOTED_RE = re.compile(
    r"""((["'])(?:""" + _HEADERS_ALT + r""")\2\s*[:=]\s*(["']))(?:(?!\3).)*(\3)""",
    re.IGNORECASE,
)
_HEADER_LINE_RE = re.compile(
    r"((?:^|[\s,;{(\[])(?:" + _HEADERS_ALT + r")\s*[:=]\s*)(?![\"'])(?:Bearer\s+)?[^\s,;}\])]+",
    re.IGNORECASE,
)
_BEARER_RE = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
REDACTED = "***"


def redact(text: str | None, secrets: Iterable[str | None] = ()) -> str:
    """Remove known secret values and token-looking fields from ``text``.

    Used for every message, excerpt and repr the client produces, because error messages end up
    in logs, Celery results and admin pages.
    """
    if not text:
        return ""
    out = text
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, REDACTED)
    out = _SECRET_JSON_RE.sub(r"\1" + REDACTED + r"\2", out)
    out = _SECRET_FORM_RE.sub(r"\1" + REDACTED, out)
    out = _HEADER_QUOTED_RE.sub(r"\1" + REDACTED + r"\4", out)
    out = _HEADER_LINE_RE.sub(r"\1" + REDACTED, out)
    out = _BEARER_RE.sub(r"\1" + REDACTED, out)
    return out


def redact_deep(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """:func:`redact` every string inside lists and dicts (Brightpearl's ``errors`` list)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_deep(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_deep(v, secrets) for v in value]
    return value


def excerpt(text: str | None, limit: int = BODY_EXCERPT_CHARS) -> str:
    """A bounded piece of a response body, for error messages and logs."""
    if not text:
        return ""
    return text if len(text) <= limit else text[:limit] + "…"


class BrightpearlError(Exception):
    """Base class: a call to Brightpearl did not give a usable answer.

    Attributes are always present (``None`` when unknown) so handlers never need ``getattr``.
    ``errors`` is Brightpearl's ``[{"code", "message"}]`` list when the body had one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        ruid: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        method: str | None = None,
        path: str | None = None,
        secrets: Iterable[str | None] = (),
    ) -> None:
        # Redacted here, at the source: whatever Brightpearl echoed (a header, a token) never
        # reaches str(), repr(), .body or .errors — so neither logs, sync events nor reports.
        secrets = [s for s in secrets if s]
        message = redact(message, secrets)
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = redact(body, secrets)
        self.ruid = ruid
        self.errors = list(redact_deep(list(errors or []), secrets))
        self.method = method
        self.path = redact(path, secrets) if path else path

    @property
    def codes(self) -> list[str]:
        """Brightpearl error codes (e.g. ``ORDC-005``) from ``errors``."""
        return [str(e.get("code")) for e in self.errors if isinstance(e, dict) and e.get("code")]

    def __str__(self) -> str:
        parts = [self.message]
        where = " ".join(p for p in (self.method, self.path) if p)
        if where:
            parts.append(f"[{where}]")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.ruid:
            parts.append(f"ruid={self.ruid}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AuthError(BrightpearlError):
    """401/403: credentials missing, wrong, revoked, or an OAuth token that could not be renewed."""


class TokenRefreshError(AuthError):
    """The OAuth refresh itself failed; the connection needs a merchant to re-authorise."""


class NotFoundError(BrightpearlError):
    """404 (``CMNC-404``): the resource does not exist (or is not visible to this app)."""


class ValidationError(BrightpearlError):
    """4xx with Brightpearl's ``errors`` list: the request was understood and refused.

    Never retried: sending the same body again gives the same answer.
    """


class ThrottledError(BrightpearlError):
    """503 (Brightpearl's "too busy") persisted after the bounded number of waits."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(BrightpearlError):
    """5xx other than throttling. For writes the outcome is unknown: search before re-posting."""


class TransportError(BrightpearlError):
    """No HTTP answer: timeout or connection failure.

    ``timeout`` says which, and ``may_have_reached_server`` says whether a write could have been
    executed (a read timeout or a dropped connection after sending) — if so, look the resource up
    by its idempotency key before sending the write again.
    """

    def __init__(
        self, message: str, *, timeout: bool, may_have_reached_server: bool, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.timeout = timeout
        self.may_have_reached_server = may_have_reached_server


class MalformedResponseError(BrightpearlError):
    """The answer was not Brightpearl JSON: not JSON at all, an HTML page, or no envelope."""


class PaymentMethodNotFoundError(BrightpearlError, LookupError):
    """No Brightpearl payment method is linked to the given bank nominal code and currency."""


def error_class_for_status(status: int) -> type[BrightpearlError]:
    """Map an HTTP status to the error class callers branch on."""
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 503:
        return ThrottledError
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return ValidationError
    return BrightpearlError
