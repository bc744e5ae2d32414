"""Shared fixtures: real services when configured, and the rule that CI never skips them."""

import os

import pytest
from django.conf import settings

from tests.support.brightpearl_sandbox import make_sandbox_account
from tests.support.processes import database_url_for_subprocess
from tests.support.webhook_receiver import WebhookReceiver

IN_CI = os.environ.get("CI") == "true"


def need_service(name: str, available: bool, why: str) -> None:
    """Skip on a laptop without the service; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {why}")
    pytest.skip(f"{name} not configured: {why}")


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher():
    """Tests create users by the dozen (admin_client makes one per test); hashing each password
    with production's PBKDF2 iterations costs about half a second of CPU. What a test checks
    about passwords (validation, lockout, login) does not depend on the hash's cost. A test
    whose password is checked by another process (which has the production hashers) puts the
    default hashers back with the `settings` fixture."""
    from django.test.utils import override_settings

    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    fast.enable()
    yield
    fast.disable()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database commits without waiting for its WAL to reach the disk (what each
    transactional test's flush and every worker's write otherwise wait for). Only durability
    across a PostgreSQL crash changes: what a transaction sees, locks and commits is the same.
    Set on the database, so the worker and web processes a test starts get it too."""
    from django.db import connection

    if connection.vendor == "postgresql":
        name = connection.settings_dict["NAME"]
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        connection.close()  # the next connection starts with the setting
    yield


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", bool(settings.REDIS_URL), "set REDIS_URL")
    return settings.REDIS_URL


@pytest.fixture
def postgres() -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    need_service("PostgreSQL", "postgresql" in engine, "set DATABASE_URL to a postgres:// URL")


@pytest.fixture
def celery_worker(postgres, redis_url, transactional_db, tmp_path):
    """Start real `celery worker` processes on Redis, on a queue of their own, using the test
    database: `handle = celery_worker(**extra_env)`. The test process's Celery app publishes to
    that queue for the duration of the test; every worker is stopped at the end."""
    import uuid

    from config.celery_app import app

    queue = f"test-{uuid.uuid4().hex[:10]}"
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    handles = []

    def start(**extra_env) -> WorkerHandle:
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "BRIGHTPEARL_API_URL": settings.BRIGHTPEARL_API_URL,
            "PLATFORM_URL_ALLOWLIST": ",".join(settings.PLATFORM_URL_ALLOWLIST),
            **{k: str(v) for k, v in extra_env.items()},
        }
        handle = WorkerHandle(queue, env, tmp_path / f"worker-{len(handles)}.log")
        handles.append(handle)
        handle.wait_ready()
        return handle

    try:
        yield start
    finally:
        app.conf.task_default_queue = old_queue
        for handle in handles:
            handle.stop()


class WorkerHandle:
    """One `celery worker` process (prefork, one child)."""

    def __init__(self, queue: str, env: dict, log):
        import subprocess
        import sys

        from connector.queues import all_queues

        self.queue, self.log = queue, log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    ",".join(all_queues(queue)),  # every kind's queue (connector/queues.py)
                    "--concurrency=1",
                    "--pool=prefork",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"{queue}@%h",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `kill_host` takes it whole
            )

    def wait_ready(self, timeout=90):
        """A bound, not a wait: ready in a few seconds on an idle machine, far slower on a
        loaded one (each Django process imports for seconds of CPU)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready." in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"celery worker did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def children(self) -> list[int]:
        from pathlib import Path

        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in kids.read_text().split()] if kids.exists() else []

    def kill_host(self) -> None:
        """SIGKILL the worker's whole process group (parent and children), as a lost host."""
        import signal

        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def received_task_ids(self, task: str) -> list[str]:
        import re

        text = self.log.read_text(errors="replace")
        return re.findall(rf"Task {re.escape(task)}\[([^\]]+)\] received", text)

    def stop(self):
        """The test is over: the whole worker goes at once. A warm shutdown took ~2.5 s a
        worker (and could still be writing while the test database is flushed)."""
        if self.proc.poll() is None:
            self.kill_host()


@pytest.fixture(scope="session")
def sandbox():
    """The Brightpearl sandbox on a free loopback port, for the whole session."""
    from brightpearl.sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox_account(sandbox):
    """A fresh Brightpearl sandbox account with default reference data."""
    return make_sandbox_account(sandbox)


@pytest.fixture(scope="session")
def loop_server():
    """The Loop sandbox on a free loopback port, for the whole session (tests reset it)."""
    from returns.platforms.loop.sandbox import LoopSandbox

    server = LoopSandbox(port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def returngo_server():
    """The ReturnGO sandbox on a free loopback port, for the whole session (tests reset it)."""
    from returns.platforms.returngo.sandbox import ReturnGOSandbox

    server = ReturnGOSandbox(port=0).start()
    yield server
    server.stop()


@pytest.fixture
def webhook_receiver():
    """An HTTP server that records the webhooks a sandbox sends it."""
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def eager(settings):
    """Run Celery tasks in-process, errors propagated (restored afterwards); the worker tests
    use a real worker instead. As with CELERY_TASK_ALWAYS_EAGER, a delivery's drain runs
    inside it, so the web process keeps no memory of the wake-up marker."""
    from config.celery_app import app

    settings.INBOUND_WAKEUP_MEMO_SECONDS = 0
    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


# The platform sandboxes listen on loopback, on ports chosen at start.
SANDBOX_PLATFORM_URLS = ["http://127.0.0.1:*"]


@pytest.fixture(autouse=True)
def _platform_sandboxes_are_allowed(settings):
    """Tests point connections at the Loop/ReturnGO sandboxes, as the demo does."""
    settings.PLATFORM_URL_ALLOWLIST = SANDBOX_PLATFORM_URLS


@pytest.fixture(autouse=True)
def _brightpearl_is_the_sandbox(request, settings):
    """No test ever reaches a real Brightpearl host: the default API URL is the sandbox."""
    if (
        "sandbox" in request.fixturenames
        or request.node.get_closest_marker("django_db")
        or ("db" in request.fixturenames or "transactional_db" in request.fixturenames)
    ):
        server = request.getfixturevalue("sandbox")
        settings.BRIGHTPEARL_API_URL = server.api_url_template
