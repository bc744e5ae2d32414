"""Helpers for tests that run real processes: the test database's URL for a child process, and
polling until something is true."""

from django.conf import settings


def database_url_for_subprocess() -> str:
    """The URL of the database this test run uses (pytest-django's test_ database)."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def wait_until(predicate, timeout=20.0, interval=0.1):
    """Poll `predicate` until it returns something truthy; fail with a clear message."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
