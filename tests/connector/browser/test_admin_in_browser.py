"""The admin in a real browser: logging in, and the connection list staff land on."""

from __future__ import annotations

import pytest

from tests.support.browser import log_in

pytestmark = pytest.mark.slow


def test_a_wrong_password_is_refused_with_a_message_and_the_right_one_logs_in(
    page, live_server, django_user_model
):
    django_user_model.objects.create_superuser("ops", "ops@example.com", "right-password-1")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "wrong-password")
    page.click("input[type=submit]")
    assert "correct username and password" in page.locator(".errornote").inner_text()
    page.shot("wrong-password")
    log_in(page, live_server.url, "ops", "right-password-1")
    assert page.locator("#user-tools").inner_text().upper().startswith("WELCOME")


def test_the_connection_list_shows_a_connection_by_name(admin_page, world):
    admin_page.goto(f"{admin_page.base_url}/admin/connector/connection/")
    admin_page.shot("connections")
    assert world.connection.name in admin_page.locator("#result_list").inner_text()
