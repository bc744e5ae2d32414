"""Fixtures for the returns app: a connection row and fresh, configured platform sandboxes (the
sandbox servers and the webhook receiver are session/common fixtures in tests/conftest.py)."""

from __future__ import annotations

import itertools

import pytest

from returns.platforms import get_platform

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
