"""Fixtures for browser tests: one Chromium for the session, a watched page per test, and a
logged-in administrator on pytest-django's live server. On a laptop without Chromium the
browser tests skip, saying so; in CI (`CI=true`) a missing Chromium fails them."""

from __future__ import annotations

import os

import pytest

from tests.support.browser import PageWatch, chromium_path, log_in, screenshot

ADMIN_PASSWORD = "browser-test-password-1"


@pytest.fixture(scope="package")
def chromium():
    """Chromium for this package's tests, closed when they end (Playwright's event loop must
    not outlive them: Django refuses ORM calls while a loop runs in the thread)."""
    path = chromium_path()
    if path is None:
        why = "install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is required in CI: {why}")
        pytest.skip(f"Chromium not installed: {why}")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous and safe here, so Django's async guard is told so.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(chromium, request):
    """A fresh 1400 px wide page; the test fails on any console error, page error or 4xx/5xx
    the page fetched. `page.shot("step")` keeps a screenshot."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    browser_page = context.new_page()
    browser_page.set_default_timeout(10_000)
    watch = PageWatch()
    watch.attach(browser_page)
    browser_page.shot = lambda step: screenshot(browser_page, request.node.name, step)
    try:
        yield browser_page
        if watch.problems:
            screenshot(browser_page, request.node.name, "problem")
        assert not watch.problems, "the page misbehaved:\n" + "\n".join(watch.problems)
    finally:
        context.close()


@pytest.fixture
def admin_page(page, live_server, django_user_model):
    """A page logged in to the admin as a superuser."""
    django_user_model.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    log_in(page, live_server.url, "admin", ADMIN_PASSWORD)
    page.base_url = live_server.url
    return page
