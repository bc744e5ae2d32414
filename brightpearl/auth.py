"""How the client proves who it is: private-app tokens or OAuth bearer tokens.

Each auth object builds its headers in one place and knows which values are secret, so the
transport can redact them from every message. :class:`OAuthAuth` also renews its access token
(form-encoded POST to a configurable token URL, because Brightpearl's docs name several) and
hands the rotated tokens to ``on_token_refresh`` so the caller can persist them — the old
refresh token stops working after a refresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .errors import MalformedResponseError, TokenRefreshError, excerpt, redact

TokenCallback = Callable[[dict[str, Any]], None]


class Auth:
    """Base: subclasses return request headers and list their secrets."""

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        return []

    @property
    def can_refresh(self) -> bool:
        return False


class PrivateAppAuth(Auth):
    """A private *system* app: ``brightpearl-app-ref`` + ``brightpearl-account-token``.

    Pass ``staff_token`` instead of ``account_token`` for a *staff* app (different header).
    """

    def __init__(
        self, app_ref: str, account_token: str | None = None, *, staff_token: str | None = None
    ) -> None:
        if not app_ref:
            raise ValueError("app_ref is required")
        if bool(account_token) == bool(staff_token):
            raise ValueError("give exactly one of account_token or staff_token")
        self.app_ref = app_ref
        self.account_token = account_token
        self.staff_token = staff_token

    def headers(self) -> dict[str, str]:
        if self.staff_token:
            return {
                "brightpearl-app-ref": self.app_ref,
                "brightpearl-staff-token": self.staff_token,
            }
        return {
            "brightpearl-app-ref": self.app_ref,
            "brightpearl-account-token": self.account_token or "",
        }

    def secrets(self) -> list[str]:
        return [s for s in (self.account_token, self.staff_token) if s]

    def __repr__(self) -> str:
        kind = "staff_token" if self.staff_token else "account_token"
        return f"{type(self).__name__}(app_ref={self.app_ref!r}, {kind}='***')"


class StaffAuth(PrivateAppAuth):
    """A private *staff* app: ``brightpearl-app-ref`` + ``brightpearl-staff-token``."""

    def __init__(self, app_ref: str, staff_token: str) -> None:
        super().__init__(app_ref, staff_token=staff_token)


class OAuthAuth(Auth):
    """An OAuth instance app: ``Authorization: Bearer`` + ``brightpearl-dev-ref`` + app ref.

    ``token_url`` may contain ``{account}`` / ``{datacentre}``; the client fills them in.
    ``client_id`` defaults to ``app_ref`` (Brightpearl's docs: client id = the app reference).
    """

    def __init__(
        self,
        app_ref: str,
        dev_ref: str,
        access_token: str,
        refresh_token: str | None = None,
        *,
        token_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        expires_at: float | None = None,
        on_token_refresh: TokenCallback | None = None,
        refresh_lock: Callable[[], AbstractContextManager[Any]] | None = None,
        load_tokens: Callable[[], Mapping[str, Any] | None] | None = None,
    ) -> None:
        if not (app_ref and dev_ref and access_token):
            raise ValueError("app_ref, dev_ref and access_token are required")
        self.app_ref = app_ref
        self.dev_ref = dev_ref
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.token_url = token_url
        self.client_id = client_id or app_ref
        self.client_secret = client_secret
        self.expires_at = expires_at
        self.api_domain: str | None = None
        self.on_token_refresh = on_token_refresh
        # Cross-process: held around the refresh (and the callback that stores the tokens).
        self.refresh_lock = refresh_lock
        # Cross-process: the tokens as stored now (another process may have rotated them).
        self.load_tokens = load_tokens
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.access_token}",
            "brightpearl-dev-ref": self.dev_ref,
            "brightpearl-app-ref": self.app_ref,
        }

    def secrets(self) -> list[str]:
        return [s for s in (self.access_token, self.refresh_token, self.client_secret) if s]

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token and self.token_url)

    def __repr__(self) -> str:
        return f"OAuthAuth(app_ref={self.app_ref!r}, dev_ref={self.dev_ref!r}, tokens='***')"

    def refresh(
        self,
        post: Callable[..., Any],
        token_url: str,
        *,
        stale_access_token: str | None = None,
        callback: TokenCallback | None = None,
    ) -> bool:
        """Exchange the refresh token for new tokens. Returns True if tokens changed.

        ``post`` is ``requests.Session.post``-like (the transport passes one with its timeout).
        If another thread already refreshed since ``stale_access_token`` was sent, nothing is
        posted: the caller just retries with the new token. With ``refresh_lock`` and
        ``load_tokens`` (the connector gives a database row lock and a read of the stored
        tokens), the same holds across processes and hosts: a rotating refresh token is used
        once, by whoever holds the lock; the others adopt the tokens it stored.
        """
        with self._lock, self.refresh_lock() if self.refresh_lock else nullcontext():
            if stale_access_token is not None and stale_access_token != self.access_token:
                return True
            if self._adopt_stored(stale_access_token or self.access_token):
                return True
            return self._exchange(post, token_url, callback)

    def _adopt_stored(self, sent_access_token: str) -> bool:
        """Another process refreshed meanwhile (its tokens are stored): use them."""
        stored = self.load_tokens() if self.load_tokens else None
        if not stored or not stored.get("access_token"):
            return False
        if stored["access_token"] == sent_access_token:
            return False
        self.access_token = stored["access_token"]
        self.refresh_token = stored.get("refresh_token") or self.refresh_token
        return True

    def _exchange(
        self, post: Callable[..., Any], token_url: str, callback: TokenCallback | None
    ) -> bool:
        if not self.refresh_token:
            raise TokenRefreshError("OAuth access token expired and no refresh token is set")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
        }
        if self.client_secret:
            form["client_secret"] = self.client_secret
        response = post(token_url, data=form)
        return self._store_and_announce(self._read_token_answer(response), callback)

    def _read_token_answer(self, response: Any) -> dict:
        """The token endpoint's JSON, or a redacted error saying what was wrong with it."""
        secrets = self.secrets()
        body = redact(excerpt(getattr(response, "text", "")), secrets)
        status = getattr(response, "status_code", None)
        if status != 200:
            raise TokenRefreshError(
                f"OAuth token refresh failed with HTTP {status}: {body}",
                status=status,
                body=body,
                method="POST",
                path="(token endpoint)",
                secrets=secrets,
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise MalformedResponseError(
                f"OAuth token endpoint answered non-JSON: {body}",
                status=status,
                body=body,
                method="POST",
                path="(token endpoint)",
                secrets=secrets,
            ) from exc
        if not isinstance(data, dict) or not data.get("access_token"):
            raise TokenRefreshError(
                "OAuth token endpoint answered without an access_token",
                status=status,
                body=redact(
                    body,
                    [str(v) for v in (data or {}).values()] if isinstance(data, dict) else [],
                ),
                method="POST",
                path="(token endpoint)",
                secrets=secrets,
            )
        return data

    def _store_tokens(self, data: dict) -> dict:
        """Keep the new tokens; the dict handed to the token callback (to persist them)."""
        self.access_token = data["access_token"]
        if data.get("refresh_token"):
            self.refresh_token = data["refresh_token"]
        if data.get("api_domain"):
            self.api_domain = data["api_domain"]
        expires_in = data.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            self.expires_at = time.time() + float(expires_in)
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "api_domain": self.api_domain,
            "token_type": data.get("token_type"),
            "expires_in": expires_in,
            "expires_at": self.expires_at,
        }

    def _store_and_announce(self, data: dict, callback: TokenCallback | None) -> bool:
        tokens = self._store_tokens(data)
        cb = callback or self.on_token_refresh
        if cb is not None:
            cb(tokens)
        return True
