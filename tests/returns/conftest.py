"""Fixtures for the returns app: a connection row, sandboxes over real HTTP, a webhook receiver."""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from returns.platforms import get_platform
from returns.platforms.loop.sandbox import LoopSandbox
from returns.platforms.returngo.sandbox import ReturnGOSandbox

_names = itertools.count(1)


@pytest.fixture
def connection(db):
    """A connector.Connection made directly through the ORM (reading the model is fine here)."""
    from connector.models import Connection

    return Connection.objects.create(
        name=f"Returns test shop {next(_names)}",
        brightpearl_account="returnsshop",
        brightpearl_app_ref="returns_app",
        brightpearl_account_token="token-value",
        refund_method_code="1200",
        platform="loop",
        platform_api_key="loop-key",
        platform_shop_name="",
    )


@pytest.fixture(scope="session")
def loop_server():
    sandbox = LoopSandbox(port=0).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def loop_sandbox(loop_server):
    loop_server.reset()
    loop_server.configure(
        rate_limit=[(300, 60.0)],
        webhook_url="",
        allow_flagged_process=False,
        action_error_status=200,
        slow_actions={},
        throttle_next=0,
    )
    return loop_server


@pytest.fixture
def loop(loop_sandbox):
    return get_platform(
        "loop",
        api_key=loop_sandbox.api_key,
        base_url=loop_sandbox.api_url,
        webhook_secret=loop_sandbox.webhook_secret,
        backoff=0.2,
    )


@pytest.fixture(scope="session")
def returngo_server():
    sandbox = ReturnGOSandbox(port=0).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def returngo_sandbox(returngo_server):
    returngo_server.reset()
    returngo_server.configure(
        rate_limit=[(100, 1.0), (2000, 86400.0)], webhook_url="", slow_writes={}, throttle_next=0
    )
    return returngo_server


@pytest.fixture
def returngo(returngo_sandbox):
    return get_platform(
        "returngo",
        api_key=returngo_sandbox.api_key,
        shop_name=returngo_sandbox.shop_name,
        base_url=returngo_sandbox.url,
        backoff=0.2,
    )


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.received.append(
                {"path": self.path, "headers": dict(self.headers), "body": body}
            )
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver():
    """A plain HTTP server that records the webhooks a sandbox sends it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    server.status = 200
    server.lock = threading.Lock()
    server.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
