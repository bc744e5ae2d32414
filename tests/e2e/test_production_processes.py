"""The production path as a whole, with real processes: the exact commands of docker-compose.yml
(migrate, gunicorn, one Celery worker per queue kind, one beat) and of the Dockerfile
(collectstatic), the Brightpearl and Loop sandboxes as their own processes, on PostgreSQL and Redis.

Everything the test does goes through public interfaces: the admin (login, add a connection,
actions), the platform's webhooks and API, the sandboxes' control APIs, /health/ and /metrics.
The commands are read from docker-compose.yml and the Dockerfile so they cannot drift; the
only changes are the ones a compose host makes anyway (each scaled worker has its own host
name; the web port is a free local one). No Docker engine is needed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.admin_forms import REFUND_INLINES
from tests.support.processes import database_url_for_subprocess, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

ACCOUNT = "e2e-store"
LOOP_KEY = "loop-e2e-key"
LOOP_SIGNING_SECRET = "loop-e2e-signing-secret"
WEBHOOK_RETURNS = 6  # orders #3001… returned through Loop's webhook
POLL_ORDER = 3099  # returned with no webhook: only a poll finds it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interpolate(arg: str, env: dict) -> str:
    """What docker compose does to ${VAR:-default} / ${VAR} in a command."""

    def value(match):
        name, default = match.group(1), match.group(3) or ""
        return env.get(name) or default

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", value, arg).replace("$$", "$")


# One worker service per queue kind (connector/queues.py); worker1 and worker2 do the story's work.
WORKERS = {1: "worker-inbound", 2: "worker-sync", 3: "worker-housekeeping", 4: "worker-bulk"}


def compose_healthchecks(env: dict) -> dict[str, list[str]]:
    """Each app service's healthcheck test as a command to run (CMD or CMD-SHELL)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    checks = {}
    for name in ("web", *WORKERS.values(), "beat"):
        kind, *test = compose["services"][name]["healthcheck"]["test"]
        test = [interpolate(str(part), env) for part in test]
        checks[name] = ["sh", "-c", test[0]] if kind == "CMD-SHELL" else test
    return checks


def compose_commands(env: dict) -> dict[str, list[str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    commands = {}
    for name in ("migrate", "web", *WORKERS.values(), "beat"):
        command = services[name]["command"]
        assert isinstance(command, list), f"{name}: use the exec form (a list)"
        commands[name] = [interpolate(str(part), env) for part in command]
    return commands


def dockerfile_collectstatic() -> tuple[dict, list[str]]:
    """The Dockerfile's collectstatic step: its variables and its command."""
    text = (ROOT / "Dockerfile").read_text()
    line = next(
        line for line in text.splitlines() if line.startswith("RUN") and "collectstatic" in line
    )
    words = shlex.split(line[len("RUN") :])
    env = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
    return env, [w for w in words if not re.fullmatch(r"[A-Z_]+=.*", w)]


def executable(command: list[str]) -> list[str]:
    """Run `python`, `gunicorn` and `celery` from this virtualenv, as the image's PATH would."""
    head = command[0]
    if head == "python":
        return [sys.executable, *command[1:]]
    if head in ("gunicorn", "celery"):
        return [str(Path(sys.executable).parent / head), *command[1:]]
    return command


class Processes:
    def __init__(self, logs: Path):
        self.logs, self.procs = logs, {}

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            executable(command), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited ({proc.returncode}):\n{self.log(name)[-4000:]}"
                )

    def wait_for(self, name: str, text: str, timeout: float = 120) -> None:
        def seen():
            self.alive()
            return text in self.log(name)

        wait_until(seen, timeout=timeout, interval=0.2)

    def stop(self) -> None:
        # Shown by pytest only when the test failed: what each process said last.
        for name in self.procs:
            print(f"----- {name}.log (tail) -----\n{self.log(name)[-3000:]}")
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run(command: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        executable(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-4000:]}"
    return result


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()


def csrf_post(session: requests.Session, url: str, data: dict, page: str | None = None):
    form = session.get(page or url, timeout=20)
    assert form.status_code == 200, form.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return session.post(
        url, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": url}, timeout=60
    )


def test_compose_services_run_the_whole_story_as_separate_processes(
    postgres, redis_url, transactional_db, processes, tmp_path, settings
):
    from django.conf import global_settings
    from django.contrib.auth import get_user_model

    from brightpearl.sandbox import SandboxControl
    from connector.models import Connection, SalesCredit, SyncEvent, SyncRun, WebhookEvent

    # --- sandboxes, each its own process ----------------------------------------------------
    bp_port, loop_port, web_port = free_port(), free_port(), free_port()
    token = secrets.token_urlsafe(16)
    credentials = tmp_path / "bp.json"
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "PUBLIC_BASE_URL", "LOG_FORMAT", "STATIC_MANIFEST")
    }
    processes.start(
        "brightpearl",
        ["python", "-m", "brightpearl.sandbox", "--port", str(bp_port), "--seed-demo", ACCOUNT]
        + [f"--account-token={token}", "--credentials-json", str(credentials)],
        base_env,
    )
    processes.start(
        "loop",
        ["python", "-m", "returns.platforms.loop.sandbox", "--port", str(loop_port)]
        + ["--api-key", LOOP_KEY, "--webhook-secret", LOOP_SIGNING_SECRET],
        base_env,
    )
    processes.wait_for("brightpearl", "Demo account")
    processes.wait_for("loop", "Loop sandbox on")
    bp_url, loop_url = f"http://127.0.0.1:{bp_port}", f"http://127.0.0.1:{loop_port}"
    web = f"http://127.0.0.1:{web_port}"
    bp = SandboxControl(bp_url, ACCOUNT)

    # --- the services' environment, as .env would give it ---------------------------------
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {
        **base_env,
        "DEBUG": "false",
        # Keys of their own, as in production (this test process never decrypts their secrets).
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CACHE_KEY_PREFIX": queue,
        "CONNECTOR_VAR_DIR": str(tmp_path / "var"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUBLIC_BASE_URL": web,
        # The sandboxes and this web server live on loopback, which E101 refuses in production.
        "SILENCED_SYSTEM_CHECKS": "connector.E101",
        "BRIGHTPEARL_API_URL": f"{bp_url}/public-api/{{account}}",
        # The Loop sandbox is the one platform API besides the public ones these services reach.
        "PLATFORM_URL_ALLOWLIST": loop_url,
        "WORKER_CONCURRENCY": "1",
        "WEB_WORKERS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    commands = compose_commands(env)

    # --- the image build step, then the one-shot migrate -----------------------------------
    build_env, collectstatic = dockerfile_collectstatic()
    run(collectstatic, {**env, **build_env, "SECRET_KEY": env["SECRET_KEY"]})
    assert (tmp_path / "var" / "static" / "staticfiles.json").exists()
    run(commands["migrate"], env)

    # --- web, one worker per queue kind (each its own host name), one beat -----------------
    web_command = commands["web"]
    assert "--bind=0.0.0.0:8000" in web_command
    web_command = [
        f"--bind=127.0.0.1:{web_port}" if a.startswith("--bind=") else a for a in web_command
    ]
    processes.start("web", web_command, env)
    for n, service in WORKERS.items():
        # Celery names a node celery@<host name>; each container has its own host name.
        processes.start(f"worker{n}", [*commands[service], "-n", f"celery@e2e-w{n}"], env)
    processes.start("beat", commands["beat"], env)
    for n in WORKERS:
        processes.wait_for(f"worker{n}", "ready.")
    wait_until(lambda: _get(f"{web}/health/live/") == 200, timeout=120, interval=0.3)

    # --- the admin, with its CSS, through gunicorn ------------------------------------------
    # gunicorn checks this password with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    get_user_model().objects.create_superuser("ops", "ops@example.com", "e2e-password-1")
    staff = requests.Session()
    login = csrf_post(
        staff,
        f"{web}/admin/login/?next=/admin/",
        {"username": "ops", "password": "e2e-password-1", "next": "/admin/"},
    )
    assert login.status_code == 200 and "Log out" in login.text, login.text[:500]
    stylesheet = re.search(r'href="(/static/admin/css/base[^"]*\.css)"', login.text).group(1)
    for path in (stylesheet, "/static/admin/css/base.css"):
        css = staff.get(f"{web}{path}", timeout=10)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css"), path
    assert re.search(r"base\.[0-9a-f]{12}\.css", stylesheet), "hashed (cacheable) static names"

    # --- a connection, added in the admin -------------------------------------------------
    added = csrf_post(
        staff,
        f"{web}/admin/connector/connection/add/",
        {
            "name": "E2E store",
            "enabled": "on",
            "brightpearl_account": ACCOUNT,
            "brightpearl_datacentre": "euw1",
            "brightpearl_auth_mode": "private_account",
            "brightpearl_app_ref": f"{ACCOUNT}_app",
            "brightpearl_account_token": token,
            "platform": "loop",
            "platform_api_key": LOOP_KEY,
            "platform_api_url": f"{loop_url}/api/v1",
            "platform_webhook_secret": LOOP_SIGNING_SECRET,
            "refund_method_code": "1200",
            "customer_ref_prefix": "RMA-",
            "sync_interval_minutes": "30",
            "create_credits": "on",
            "record_refunds": "on",
            "update_platform": "on",
            "warehouse_mappings-TOTAL_FORMS": "0",
            "warehouse_mappings-INITIAL_FORMS": "0",
            "warehouse_mappings-MIN_NUM_FORMS": "0",
            "warehouse_mappings-MAX_NUM_FORMS": "1000",
            **REFUND_INLINES,
        },
    )
    assert added.status_code == 200 and "errorlist" not in added.text, added.text[:3000]
    connection_id = Connection.objects.values_list("pk", flat=True).get(name="E2E store")
    changelist = f"{web}/admin/connector/connection/"
    registered = csrf_post(
        staff,
        changelist,
        {"action": "register_brightpearl_webhooks", "_selected_action": connection_id},
    )
    assert registered.status_code == 200, registered.text[:2000]

    # Loop is told where to deliver (what a merchant pastes into Loop's developer settings).
    # The secret is encrypted with the services' keys: ask them, as an operator's shell would.
    secret = (
        run(
            [
                "python",
                "manage.py",
                "shell",
                "-c",
                "from connector.models import Connection; "
                f"print(Connection.objects.get(pk={connection_id}).webhook_secret)",
            ],
            env,
        )
        .stdout.strip()
        .splitlines()[-1]
    )  # after Django's "N objects imported" line
    loop_hook = f"{web}/webhooks/loop/{connection_id}/{secret}/"
    _control(loop_url, "POST", "/config", {"webhook_url": loop_hook})

    # --- returns: six through Loop's webhook, one that only a poll finds -------------------
    numbers = [3001 + i for i in range(WEBHOOK_RETURNS)] + [POLL_ORDER]
    bp.seed(
        orders=[
            {
                "reference": f"#{n}",
                "externalRef": f"shop-{n}",
                "contactId": 200,
                "currencyCode": "GBP",
                "rows": [{"sku": "TSHIRT-BLK-M", "quantity": 1}],
            }
            for n in numbers
        ]
    )
    loop_ids = {}
    for n in numbers:
        created = _control(
            loop_url,
            "POST",
            "/returns",
            {
                "order_name": f"#{n}",
                "order_id": f"shop-{n}",
                "currency": "GBP",
                "lines": [{"sku": "TSHIRT-BLK-M", "price": "20.00"}],
                "fire": n != POLL_ORDER,
            },
        )
        loop_ids[n] = created["id"]
    # The poll: "Run sync now" in the admin queues a sync for a worker.
    csrf_post(staff, changelist, {"action": "sync_selected_now", "_selected_action": connection_id})

    def credits_by_order():
        state = bp.state()
        names = {o["id"]: o.get("reference") for o in state["orders"]}
        found = {}
        for order in state["orders"]:
            if order["orderTypeCode"] == "SC":
                found.setdefault(names.get(order["parentOrderId"]), []).append(order["id"])
        processes.alive()
        return found

    wanted = {f"#{n}" for n in numbers}
    credits = wait_until(
        lambda: (c := credits_by_order()) and wanted <= set(c) and c, timeout=90, interval=0.5
    )
    assert {k: len(v) for k, v in credits.items() if k in wanted} == dict.fromkeys(wanted, 1)

    # --- the warehouse receives #3001: Brightpearl's webhook → processed on Loop → refund ---
    first = 3001
    credit_id = credits[f"#{first}"][0]
    # Once no sync is running, only Brightpearl's webhook can tell the connector.
    wait_until(
        lambda: not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists(), timeout=60
    )
    bp.receive(credit_id)

    def paid():
        processes.alive()
        return [
            p
            for p in bp.state().get("customerPayments", [])
            if int(p.get("orderId") or 0) == credit_id
        ]

    payments = wait_until(paid, timeout=90, interval=0.5)
    assert len(payments) == 1
    actions = _control(loop_url, "GET", "/actions")["actions"]
    processed = [a for a in actions if a["action"] == "process"]
    assert [a["return_id"] for a in processed] == [loop_ids[first]]
    receipt = SyncEvent.objects.get(kind="receipt", outcome="succeeded")
    assert receipt.run.trigger == SyncRun.Trigger.WEBHOOK
    assert WebhookEvent.objects.filter(source="brightpearl", status="processed").exists()
    bound = SalesCredit.objects.filter(rma__external_id=str(loop_ids[first]))
    assert list(bound.values_list("credit_id", flat=True)) == [credit_id]

    # --- the inbound and the sync worker shared the work, nothing was done twice -----------
    for n in (1, 2):
        assert re.search(
            r"Task connector\.tasks\.\w+\[[^\]]+\] succeeded", processes.log(f"worker{n}")
        ), f"worker{n} did no work:\n{processes.log(f'worker{n}')[-3000:]}"
    assert sum(len(v) for k, v in credits_by_order().items() if k in wanted) == len(wanted)

    # --- the containers' healthchecks, as docker would run them ------------------------------
    checks = compose_healthchecks(env)
    in_image = {**env, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"}
    web_check = [a.replace("localhost:8000", f"localhost:{web_port}") for a in checks["web"]]
    run(checks["beat"], in_image, timeout=60)
    # Beat writes a heartbeat every 5 s: once it hangs, a 6 s limit is passed within 6.5 s.
    beat_check = {**in_image, "HEALTH_BEAT_MAX_AGE_SECONDS": "6"}
    processes.procs["beat"].send_signal(signal.SIGSTOP)
    hung_at = time.monotonic()
    try:
        run(web_check, in_image, timeout=30)
        run(checks["worker-sync"], {**in_image, "HOSTNAME": "e2e-w2"}, timeout=60)
        time.sleep(max(0.0, 6.5 - (time.monotonic() - hung_at)))
        silent = subprocess.run(
            executable(checks["beat"]), cwd=ROOT, env=beat_check, timeout=60, capture_output=True
        )
        assert silent.returncode == 1, "the beat healthcheck fails when beat is silent"
    finally:
        processes.procs["beat"].send_signal(signal.SIGCONT)

    # --- operations: health, metrics, JSON logs with context --------------------------------
    health = requests.get(f"{web}/health/?format=json", timeout=30)
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["connections"][str(connection_id)]["stale"] is False
    assert all(v == "OK" for k, v in body.items() if k != "connections"), body
    metrics = requests.get(f"{web}/metrics", timeout=30).text
    assert _metric(metrics, 'connector_webhooks_received_total{source="loop"}') >= WEBHOOK_RETURNS
    assert _metric(metrics, 'connector_webhooks_received_total{source="brightpearl"}') >= 1
    assert _metric(metrics, 'connector_sync_items_total{kind="credit",outcome="succeeded"}') >= len(
        wanted
    )
    assert _metric(metrics, 'connector_sync_items_total{kind="refund",outcome="succeeded"}') >= 1
    assert _metric(metrics, "connector_brightpearl_requests_total") > 0
    assert f'connector_queue_depth{{queue="{queue}"}}' in metrics
    lines = [
        json.loads(line)
        for n in (1, 2)
        for line in processes.log(f"worker{n}").splitlines()
        if line.startswith("{")
    ]
    assert any(
        line.get("connection") == str(connection_id) and line.get("run") and line.get("rma")
        for line in lines
    ), "worker log lines carry the connection, run and RMA"
    assert any(line.get("brightpearl_request_id") for line in lines)


def _get(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return 0


def _control(base: str, method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(method, f"{base}/_sandbox{path}", json=body, timeout=30)
    assert response.status_code < 300, response.text
    return response.json()


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))
