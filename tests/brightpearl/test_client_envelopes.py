"""Envelopes, typed errors, retries and redaction over real HTTP against a tiny scripted server.

The sandbox answers like Brightpearl; this server answers like a *broken* Brightpearl (HTML
pages, non-JSON, missing envelopes, dropped connections) so the error paths are exercised.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from brightpearl import (
    AuthError,
    BrightpearlClient,
    BrightpearlError,
    MalformedResponseError,
    NotFoundError,
    OAuthAuth,
    PrivateAppAuth,
    ServerError,
    StaffAuth,
    ThrottledError,
    TokenRefreshError,
    TransportError,
    ValidationError,
    parse_envelope,
)

ACCOUNT_TOKEN = "acct-token-SECRET-123456"


class ScriptedServer:
    """Serves queued answers in order; each is (status, headers, body) or "drop"/("sleep", s)."""

    def __init__(self):
        self.script = []
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body.decode(),
                    }
                )
                item = server.script.pop(0) if server.script else (200, {}, '{"response": null}')
                if item == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(item, tuple) and item[0] == "sleep":
                    time.sleep(item[1])
                    item = (200, {}, '{"response": "late"}')
                status, headers, text = item
                data = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout tests)
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, *items):
        self.script.extend(items)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


def make_client(server, **kwargs):
    kwargs.setdefault("auth", PrivateAppAuth("acct_app", ACCOUNT_TOKEN))
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("retry_backoff", 0.01)
    kwargs.setdefault("max_throttle_wait", 0.05)
    return BrightpearlClient(
        "acct", base_url_template=server.url + "/public-api/{account}", **kwargs
    )


def j(obj):
    return json.dumps(obj)


# -- success envelopes ----------------------------------------------------------------------------


def test_response_unwrapped_and_headers_sent(server):
    server.add((200, {"ruid": "r-1"}, j({"response": {"configuration": {"x": 1}}})))
    client = make_client(server)
    assert client.get_account_configuration() == {"configuration": {"x": 1}}
    req = server.requests[0]
    assert req["path"] == "/public-api/acct/integration-service/account-configuration"
    assert req["headers"]["brightpearl-app-ref"] == "acct_app"
    assert req["headers"]["brightpearl-account-token"] == ACCOUNT_TOKEN
    assert client.request_count == 1
    assert client.last_ruid == "r-1"


def test_staff_and_oauth_headers(server):
    server.add((200, {}, j({"response": []})), (200, {}, j({"response": []})))
    make_client(server, auth=StaffAuth("acct_app", "staff-tok")).get_channels()
    make_client(server, auth=OAuthAuth("acct_app", "dev1", "access-1")).get_channels()
    staff, oauth = (r["headers"] for r in server.requests)
    assert staff["brightpearl-staff-token"] == "staff-tok"
    assert "brightpearl-account-token" not in staff
    assert oauth["Authorization"] == "Bearer access-1"
    assert oauth["brightpearl-dev-ref"] == "dev1"
    assert oauth["brightpearl-app-ref"] == "acct_app"


def test_empty_object_is_success(server):
    server.add((200, {}, "{}"))
    assert make_client(server).update_order_status(5, 2) is None
    assert json.loads(server.requests[0]["body"]) == {"orderStatusId": 2}
    assert server.requests[0]["headers"]["Content-Type"] == "application/json"


def test_207_partial_returns_what_was_found(server):
    server.add((207, {}, j({"response": [{"id": 1}]})))
    assert make_client(server).get_sales_credits([1, 2]) == [{"id": 1}]
    assert server.requests[0]["path"].endswith("/order-service/sales-credit/1,2")


def test_404_on_batched_get_means_none_found(server):
    server.add((404, {}, j({"errors": [{"code": "CMNC-404", "message": "Not found"}]})))
    assert make_client(server).get_orders([9]) == []


# -- typed errors ---------------------------------------------------------------------------------


def test_validation_error_carries_codes(server):
    server.add(
        (
            400,
            {"ruid": "r-400"},
            j({"errors": [{"code": "ORDC-005", "message": "You have not supplied an order type"}]}),
        )
    )
    with pytest.raises(ValidationError) as info:
        make_client(server).create_sales_credit({"ref": "x"})
    err = info.value
    assert err.status == 400
    assert err.codes == ["ORDC-005"]
    assert err.errors[0]["message"].startswith("You have not")
    assert err.ruid == "r-400"
    assert err.method == "POST"
    assert err.path == "/order-service/sales-credit"
    assert "ORDC-005" in str(err)


def test_not_found_and_auth_errors(server):
    server.add(
        (404, {}, j({"errors": [{"code": "CMNC-404", "message": "Webhook not found"}]})),
        (401, {}, j({"errors": [{"code": "CMNC-401", "message": "Not authenticated"}]})),
    )
    client = make_client(server)
    with pytest.raises(NotFoundError):
        client.delete_webhook(77)
    with pytest.raises(AuthError):
        client.get_account_configuration()


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (200, "<html><body>Gateway says hi</body></html>", "Gateway says hi"),
        (200, "not json at all", "not json"),
        (200, j({"result": [1, 2]}), "result"),
        (200, j([1, 2, 3]), "[1, 2, 3]"),
        (400, "<html>Bad request</html>", "Bad request"),
        (200, j({"errors": "boom"}), "boom"),
    ],
)
def test_malformed_answers(server, status, body, fragment):
    server.add((status, {"ruid": "r-m"}, body))
    with pytest.raises(MalformedResponseError) as info:
        make_client(server).get_account_configuration()
    assert fragment in info.value.body
    assert info.value.status == status
    assert info.value.ruid == "r-m"
    assert isinstance(info.value, BrightpearlError)


def test_html_5xx_on_get_is_retried_then_server_error(server):
    page = (502, {}, "<html><h1>502 Bad Gateway</h1></html>")
    server.add(page, page, page, page)
    client = make_client(server, max_retries=3)
    with pytest.raises(ServerError) as info:
        client.get_warehouses()
    assert "502 Bad Gateway" in info.value.body
    assert client.request_count == 4


def test_get_retry_recovers(server):
    server.add(
        (500, {}, j({"errors": [{"code": "X", "message": "oops"}]})),
        (200, {}, j({"response": [{"id": 1}]})),
    )
    client = make_client(server)
    assert client.get_warehouses() == [{"id": 1}]
    assert client.request_count == 2


def test_post_not_retried_on_5xx(server):
    server.add(
        (500, {}, j({"errors": [{"code": "X", "message": "oops"}]})), (200, {}, j({"response": 5}))
    )
    client = make_client(server)
    with pytest.raises(ServerError):
        client.create_customer_payment({"transactionRef": "t1"})
    assert client.request_count == 1
    assert len(server.requests) == 1


def test_post_not_retried_after_drop(server):
    server.add("drop", (200, {}, j({"response": 5})))
    client = make_client(server)
    with pytest.raises(TransportError) as info:
        client.add_order_note(1, "hello")
    assert info.value.timeout is False
    assert info.value.may_have_reached_server is True
    assert client.request_count == 1


def test_get_retried_after_drop(server):
    server.add("drop", (200, {}, j({"response": [{"id": 3}]})))
    client = make_client(server)
    assert client.get_channels([3]) == [{"id": 3}]
    assert client.request_count == 2


def test_read_timeout_is_transport_error(server):
    server.add(("sleep", 1.0))
    client = make_client(server, timeout=(1.0, 0.2))
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        client.create_webhook({"subscribeTo": "x"})
    assert time.monotonic() - started < 0.9
    assert info.value.timeout is True
    assert info.value.may_have_reached_server is True


def test_connection_refused_did_not_reach_server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = BrightpearlClient(
        "acct",
        PrivateAppAuth("a", ACCOUNT_TOKEN),
        base_url_template=f"http://127.0.0.1:{port}/public-api/{{account}}",
        timeout=1.0,
        max_retries=1,
        retry_backoff=0.01,
    )
    with pytest.raises(TransportError) as info:
        client.create_customer_payment({})
    assert info.value.may_have_reached_server is False
    assert info.value.timeout is False
    assert client.request_count == 1


def test_503_waits_and_retries_even_for_post(server):
    busy = (
        503,
        {"brightpearl-next-throttle-period": "30", "brightpearl-requests-remaining": "0"},
        "",
    )
    server.add(busy, busy, (200, {}, j({"response": 42})))
    client = make_client(server)
    assert client.create_sales_credit({"externalRef": "r"}) == 42
    assert client.request_count == 3
    assert client.throttled_count == 2


def test_503_bounded_then_throttled_error(server):
    busy = (503, {"brightpearl-next-throttle-period": "10"}, "Too busy")
    server.add(*[busy] * 4)
    client = make_client(server, max_throttle_retries=2)
    with pytest.raises(ThrottledError) as info:
        client.get_channels()
    assert client.request_count == 3
    assert info.value.retry_after == pytest.approx(0.01)


# -- OAuth refresh and redaction ------------------------------------------------------------------


def test_token_refresh_once_then_retry(server, caplog):
    caplog.set_level(logging.DEBUG, logger="brightpearl")
    expired = (401, {}, j({"response": "Authorization token expired"}))
    tokens = j(
        {
            "access_token": "access-2",
            "refresh_token": "refresh-2",
            "api_domain": "h",
            "expires_in": 60,
        }
    )
    server.add(expired, (200, {}, tokens), (200, {}, j({"response": 7})))
    seen = []
    auth = OAuthAuth("app", "dev", "access-1", "refresh-1", client_secret="sekrit")
    client = make_client(
        server,
        auth=auth,
        token_url=server.url + "/oauth/token/{account}",
        on_token_refresh=seen.append,
    )
    assert client.add_order_note(3, "x") == 7
    refresh_req = server.requests[1]
    assert refresh_req["path"] == "/oauth/token/acct"
    assert "grant_type=refresh_token" in refresh_req["body"]
    assert "refresh_token=refresh-1" in refresh_req["body"]
    assert "client_id=app" in refresh_req["body"]
    assert refresh_req["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert server.requests[2]["headers"]["Authorization"] == "Bearer access-2"
    assert (
        seen and seen[0]["refresh_token"] == "refresh-2" and seen[0]["access_token"] == "access-2"
    )
    assert auth.refresh_token == "refresh-2"
    assert client.request_count == 3
    assert caplog.records  # requests were logged…
    for secret in ("access-1", "access-2", "refresh-1", "refresh-2", "sekrit"):
        assert secret not in caplog.text  # …without any secret


def test_second_expiry_fails_loudly(server):
    expired = (401, {}, j({"response": "Authorization token expired"}))
    tokens = j({"access_token": "access-2", "refresh_token": "refresh-2"})
    server.add(expired, (200, {}, tokens), expired)
    auth = OAuthAuth("app", "dev", "access-1", "refresh-1", token_url=server.url + "/t")
    client = make_client(server, auth=auth)
    with pytest.raises(AuthError) as info:
        client.get_channels()
    assert "after refreshing" in str(info.value)
    assert client.request_count == 3


def test_refresh_failure_is_redacted(server):
    expired = (401, {}, j({"response": "Authorization token expired"}))
    server.add(expired, (400, {}, j({"error": "invalid_grant", "refresh_token": "refresh-1"})))
    auth = OAuthAuth(
        "app",
        "dev",
        "access-1",
        "refresh-1",
        client_secret="topsecret-value",
        token_url=server.url + "/t",
    )
    client = make_client(server, auth=auth)
    with pytest.raises(TokenRefreshError) as info:
        client.get_channels()
    text = str(info.value) + repr(info.value) + info.value.body
    assert "refresh-1" not in text
    assert "invalid_grant" in text


def test_secrets_never_in_errors_or_reprs(server):
    server.add((400, {}, j({"errors": [{"code": "X", "message": f"bad token {ACCOUNT_TOKEN}"}]})))
    client = make_client(server)
    with pytest.raises(ValidationError) as info:
        client.get_channels()
    err = info.value
    assert ACCOUNT_TOKEN not in err.body
    assert ACCOUNT_TOKEN not in repr(client) + repr(client.auth)
    oauth = OAuthAuth("app", "dev", "access-xyz", "refresh-xyz", client_secret="cs-xyz")
    assert "xyz" not in repr(oauth)


def test_goods_in_notes_malformed_map(server):
    server.add((200, {}, j({"response": {"abc": {}}})))
    with pytest.raises(MalformedResponseError):
        make_client(server).get_goods_in_notes(note_ids=[1])


def test_parse_envelope_pure():
    assert parse_envelope(200, j({"response": 324}))[0] == 324
    assert parse_envelope(200, "{}")[0] is None
    assert parse_envelope(204, "")[0] is None
    with pytest.raises(AuthError):
        parse_envelope(401, j({"response": "Authorization token expired"}))
    with pytest.raises(ThrottledError):
        parse_envelope(503, "")
    with pytest.raises(ServerError):
        parse_envelope(500, "")
    with pytest.raises(NotFoundError):
        parse_envelope(404, "")
