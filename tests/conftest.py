"""Shared fixtures: real services when configured, and the rule that CI never skips them."""

import os

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI") == "true"


def need_service(name: str, available: bool, why: str) -> None:
    """Skip on a laptop without the service; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {why}")
    pytest.skip(f"{name} not configured: {why}")


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", bool(settings.REDIS_URL), "set REDIS_URL")
    return settings.REDIS_URL


@pytest.fixture
def postgres() -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    need_service("PostgreSQL", "postgresql" in engine, "set DATABASE_URL to a postgres:// URL")


def database_url_for_subprocess() -> str:
    """The URL of the database this test run uses (pytest-django's test_ database)."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(postgres, redis_url, transactional_db, tmp_path):
    """A real `celery worker` process on Redis, on a queue of its own, using the test database.

    Yields a handle with `.queue` and `.stop(sig)`; the test process's Celery app publishes to
    that queue for the duration of the test.
    """
    import signal
    import subprocess
    import sys
    import time
    import uuid

    from config.celery_app import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "BRIGHTPEARL_API_URL": settings.BRIGHTPEARL_API_URL,
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue,
             "--concurrency=1", "--pool=prefork", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", f"{queue}@%h"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue

    class Handle:
        def __init__(self):
            self.queue, self.proc, self.log = queue, proc, log

        def wait_ready(self, timeout=30):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if b"ready." in log.read_bytes():
                    return
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            raise RuntimeError(f"celery worker did not start:\n{log.read_text()[-3000:]}")

        def stop(self, sig=signal.SIGTERM):
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    handle = Handle()
    try:
        handle.wait_ready()
        yield handle
    finally:
        app.conf.task_default_queue = old_queue
        handle.stop()


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
