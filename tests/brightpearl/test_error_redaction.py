"""Brightpearl errors never carry a credential, whatever the server echoes back.

A real HTTP server answers every call with an error that echoes the request's headers (and
body) — in Brightpearl's ``errors`` envelope, as raw text, for 4xx and 5xx — for every auth
mode: private app account token, staff token, and OAuth (access token, refresh token and client
secret, through a token refresh that is refused with an echo too).
"""

from __future__ import annotations

import json

import pytest

from brightpearl import BrightpearlClient, BrightpearlError, OAuthAuth, PrivateAppAuth
from tests.echo_server import EchoServer

ACCOUNT_TOKEN = "SEKRET-ACCT-TOKEN-111-abcdef"
STAFF_TOKEN = "SEKRET-STAFF-TOKEN-222-abcdef"
ACCESS_TOKEN = "SEKRET-ACCESS-TOKEN-333-abcdef"
REFRESH_TOKEN = "SEKRET-REFRESH-TOKEN-444-abcdef"
CLIENT_SECRET = "SEKRET-CLIENT-SECRET-555-abcdef"
ALL = (ACCOUNT_TOKEN, STAFF_TOKEN, ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET)


def auth_for(mode: str):
    if mode == "account":
        return PrivateAppAuth("shop_app", account_token=ACCOUNT_TOKEN)
    if mode == "staff":
        return PrivateAppAuth("shop_app", staff_token=STAFF_TOKEN)
    return OAuthAuth(
        "shop_app",
        "devref",
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        client_secret=CLIENT_SECRET,
    )


def every_text_of(exc: BrightpearlError) -> str:
    return "\n".join(
        [
            str(exc),
            repr(exc),
            exc.message,
            exc.body,
            json.dumps(exc.errors),
            str(exc.path),
            str(exc.args),
        ]
    )


def call(server: EchoServer, mode: str) -> BrightpearlError:
    client = BrightpearlClient(
        "shop",
        auth_for(mode),
        base_url_template=server.url + "/public-api/{account}",
        token_url=server.url + "/oauth/token/{account}",
        max_retries=0,
        max_throttle_retries=0,
        max_throttle_wait=0.01,
        sleep=lambda s: None,
    )
    with pytest.raises(BrightpearlError) as caught:
        client.post("/order-service/order", {"reference": "x"})
    return caught.value


@pytest.mark.parametrize("mode", ["account", "staff", "oauth"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500, 503])
@pytest.mark.parametrize("style", ["brightpearl", "text"])
def test_an_echoed_credential_never_reaches_the_error(mode, status, style):
    # "Authorization token expired" makes the OAuth client refresh: the token endpoint echoes
    # the refresh form (refresh token, client secret) back in its refusal too.
    server = EchoServer(status, style, prefix="Authorization token expired: ").start()
    try:
        exc = call(server, mode)
    finally:
        server.stop()
    sent = "\n".join(json.dumps(r) for r in server.requests)
    used = [s for s in ALL if s in sent]
    assert used, "the echo server must have received the credentials"
    text = every_text_of(exc)
    assert "ECHO-001" in text or "rejected" in text or status == 503 or style == "text"
    for secret in used:
        assert secret not in text, f"{type(exc).__name__} carries {secret[:18]}…"


def test_the_oauth_refresh_itself_was_exercised():
    server = EchoServer(401, "brightpearl", prefix="Authorization token expired: ").start()
    try:
        exc = call(server, "oauth")
    finally:
        server.stop()
    refresh = [r for r in server.requests if r["path"].startswith("/oauth/token/")]
    assert refresh and REFRESH_TOKEN in refresh[0]["body"] and CLIENT_SECRET in refresh[0]["body"]
    assert "refresh" in str(exc).lower()
    for secret in ALL:
        assert secret not in every_text_of(exc)


def test_errors_redact_echoed_credential_headers_even_without_the_values():
    """Defence in depth: a header name followed by a value is masked in any spelling."""
    from brightpearl.errors import ValidationError

    exc = ValidationError(
        'seen {"brightpearl-account-token": "abc123secret"}; '
        "Authorization: Bearer eyJhbGciOi.payload.sig; "
        "{'brightpearl-staff-token': 'zzz999secret'}",
        errors=[{"code": "X", "message": "X-Authorization: loopkey-777"}],
    )
    text = every_text_of(exc)
    for leaked in ("abc123secret", "eyJhbGciOi", "zzz999secret", "loopkey-777"):
        assert leaked not in text
