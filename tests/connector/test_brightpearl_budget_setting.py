"""The client's request budget per account comes from BRIGHTPEARL_REQUESTS_PER_MINUTE."""

import pytest

from connector.models import Connection
from connector.services.brightpearl import client_for


@pytest.mark.django_db
@pytest.mark.parametrize("per_minute", [200, 1200])
def test_client_budget_follows_the_setting(settings, per_minute):
    settings.BRIGHTPEARL_REQUESTS_PER_MINUTE = per_minute
    connection = Connection(
        name="budget",
        brightpearl_account="acme",
        brightpearl_app_ref="a",
        brightpearl_account_token="t",
        platform="loop",
    )
    client = client_for(connection)
    assert client.throttle.budget == per_minute
    assert client.throttle.window_ms >= 60_000
