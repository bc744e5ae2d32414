"""Fixtures for sync tests: `world` (Loop) and `rg_world` (ReturnGO), built by
tests/support/world.py."""

from __future__ import annotations

import pytest

from tests.support.world import World, make_world


@pytest.fixture
def world(db, sandbox, loop_server, settings, django_capture_on_commit_callbacks) -> World:
    loop_server.reset()
    loop_server.configure(
        rate_limit=[(300, 60.0)],
        webhook_url="",
        allow_flagged_process=False,
        action_error_status=200,
        slow_actions={},
        throttle_next=0,
    )
    return make_world(
        sandbox,
        loop_server,
        settings,
        "Ada Lovelace",
        name="Loop shop {code}",
        platform="loop",
        platform_api_key=loop_server.api_key,
        platform_api_url=loop_server.api_url,
        refund_method_code="1200",
        customer_ref_prefix="RMA-",
    )


@pytest.fixture
def rg_world(db, sandbox, returngo_server, loop_server, settings):
    returngo_server.reset()
    world = make_world(
        sandbox,
        loop_server,
        settings,
        "Grace Hopper",
        name="ReturnGO shop {code}",
        platform="returngo",
        platform_api_key=returngo_server.api_key,
        platform_shop_name=returngo_server.shop_name,
        platform_api_url=returngo_server.url,
        refund_method_code="1220",
        customer_ref_prefix="RGO-",
    )
    world.returngo = returngo_server
    return world


@pytest.fixture
def brightpearl_oauth_at_sandbox(settings, sandbox):
    """The Brightpearl API and its OAuth token endpoint are the sandbox's."""
    settings.BRIGHTPEARL_API_URL = sandbox.api_url_template
    settings.BRIGHTPEARL_OAUTH_TOKEN_URL = f"{sandbox.url}/oauth/token/{{account}}"
