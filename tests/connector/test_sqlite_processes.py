"""The laptop default (SQLite + the filesystem broker) with the web process and a Celery worker
running as real processes and writing at once: every webhook is stored and every event is
processed — none lost to "database is locked"."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env, *args, timeout=120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


SETUP = """
from connector.models import Connection
c = Connection.objects.create(name="Laptop shop", brightpearl_account="laptop",
    brightpearl_app_ref="app", brightpearl_account_token="t", platform="loop",
    platform_api_key="{key}", platform_api_url="{url}", platform_webhook_secret="{secret}",
    refund_method_code="1200", create_credits=False, record_refunds=False)
print("CONNECTION", c.pk, c.webhook_secret)
"""

REPORT = """
import json
from collections import Counter
from connector.models import WebhookEvent
from returns.models import Rma
statuses = Counter(WebhookEvent.objects.values_list("status", flat=True))
print("REPORT", json.dumps({"rmas": Rma.objects.count(), "statuses": statuses,
                  "errors": sorted(set(WebhookEvent.objects.exclude(error="")
                                       .exclude(status__in=["ignored", "duplicate"])
                                       .values_list("error", flat=True)))}))
"""


def processed_events(path: Path) -> int:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        sql = "SELECT count(*) FROM connector_webhookevent WHERE status = 'processed'"
        return db.execute(sql).fetchone()[0]


def test_web_and_worker_processes_share_one_sqlite_file(tmp_path):
    """Loop webhooks: the web process stores each delivery while two worker processes re-fetch
    the return from the Loop sandbox and upsert it (transactions that read, then write)."""
    from returns.platforms.loop.adapter import signature
    from returns.platforms.loop.sandbox import LoopSandbox

    loop = LoopSandbox(port=0, rate_limit=[(100_000, 60.0)]).start()
    return_ids = [loop.add_return(fire=False)["id"] for _ in range(24)]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env.update(
        CONNECTOR_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="filesystem://",
        CELERY_FILESYSTEM_POLLING_INTERVAL="0.1",
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="true",  # the laptop set-up: demo keys are fine there
        PLATFORM_URL_ALLOWLIST="http://127.0.0.1:*",
    )
    manage(env, "migrate", "--noinput")
    setup = SETUP.format(key=loop.api_key, url=loop.api_url, secret=loop.webhook_secret)
    line = next(x for x in manage(env, "shell", "-c", setup).splitlines() if "CONNECTION" in x)
    _, pk, secret = line.split()
    assert "wal" in manage(
        env,
        "shell",
        "-c",
        "from django.db import connection as c; "
        "c.ensure_connection(); print(c.cursor().execute('PRAGMA journal_mode').fetchone()[0])",
    )

    port = free_port()
    logs = []

    def start(*args):
        log = open(tmp_path / f"proc-{len(logs)}.log", "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    web = start(sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}")
    worker = start(
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=prefork",
        "--concurrency=2",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    )
    try:
        url = f"http://127.0.0.1:{port}/webhooks/loop/{pk}/{secret}/"
        deadline = time.monotonic() + 90  # a bound: seconds when the machine is idle
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/api/schema/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)

        answers = []

        def deliver(offset):
            session = requests.Session()
            for n in range(offset, 48, 6):
                return_id = return_ids[n % 24]
                trigger = "return.created" if n < 24 else "return.updated"
                body = loop.webhook_body(return_id, trigger)
                answers.append(
                    session.post(
                        url,
                        data=body,
                        headers={
                            "Content-Type": "application/json",
                            "X-Loop-Signature": signature(loop.webhook_secret, body),
                        },
                        timeout=30,
                    ).status_code
                )

        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert answers.count(202) == 48, answers

        # Wait by reading the file (a Django process per look costs seconds of CPU the web and
        # worker processes need), then report through Django once.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and processed_events(tmp_path / "db.sqlite3") < 48:
            time.sleep(0.2)
        out = manage(env, "shell", "-c", REPORT)
        report = json.loads(next(x for x in out.splitlines() if "REPORT" in x)[7:])
        assert report == {"rmas": 24, "statuses": {"processed": 48}, "errors": []}, report
    finally:
        for proc in (web, worker):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
        loop.stop()
    output = "".join(p.read_text(errors="replace") for p in tmp_path.glob("proc-*.log"))
    assert "database is locked" not in output
