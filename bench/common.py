"""What the benchmarks share: loopback-only services and a database of their own, the
environment of the connector processes they start (web, Celery workers), the Brightpearl and
Loop sandboxes with a merchant's account seeded, and the child processes themselves.

Importing it puts this checkout on `sys.path`. Django is set up by `start_brightpearl` (the
process benchmarks, after their environment is known) or `in_process_django` (the in-process
ones); what needs the models imports them only then, never at import time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import django  # noqa: E402

from brightpearl.sandbox import SandboxControl, SandboxServer  # noqa: E402

# The row fields every seeded sales order carries: standard-rate tax, the sales nominal.
TAX_CODE, SALES_NOMINAL = "T20", "4000"


# ------------------------------------------------------------------------- services
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on the loopback port (the web process is up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing a non-loopback service: {url}")


def service_arguments(parser: argparse.ArgumentParser, database: str) -> None:
    """--database-url (a database of the benchmark's own, recreated) and --redis-url."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}"
        ),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )


def recreate_database(database_url: str) -> None:
    import psycopg  # the process benchmarks need PostgreSQL; the in-process ones do not

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"unexpected database name {name!r}")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


# ------------------------------------------------------------------------- Django
def process_env(database_url: str, redis_url: str, queue: str, **extra: str) -> dict[str, str]:
    """The environment of every connector process a benchmark starts (and of itself): the
    same database, Redis, Celery queue and keys (shared encryption); `extra` adds or overrides
    settings."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SECRET_KEY": secrets.token_urlsafe(48),  # the same in every process: shared encryption
        "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "DEBUG": "false",
        "PLATFORM_URL_ALLOWLIST": "http://127.0.0.1:*",  # the Loop sandbox
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def start_brightpearl(env: dict[str, str]) -> SandboxServer:
    """Start the Brightpearl sandbox (a thread of this process), point `env` at it, and set
    Django up in this process with that environment (the children get a copy of it)."""
    server = SandboxServer(host="127.0.0.1", port=0).start()
    env["BRIGHTPEARL_API_URL"] = server.api_url_template
    os.environ.update(env)
    django.setup()
    return server


def in_process_django() -> None:
    """For the benchmarks that run the sync in this process: SQLite in a temporary directory
    unless DATABASE_URL is set; the Loop sandbox on loopback allowed as a platform URL."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("CONNECTOR_VAR_DIR", tempfile.mkdtemp(prefix="bench-"))
    os.environ.setdefault("PLATFORM_URL_ALLOWLIST", "http://127.0.0.1:*")
    django.setup()


# ------------------------------------------------------------------------- a merchant
def new_account(
    server_url: str,
    code: str,
    token: str,
    *,
    contact: dict,
    products: Iterable[dict],
    **account,
) -> tuple[SandboxControl, int]:
    """A Brightpearl sandbox account (app ref `<code>_app`) with one contact and the
    products; the account's control client and the contact's id."""
    control = SandboxControl(server_url).create_account(
        code, app_ref=f"{code}_app", account_token=token, **account
    )
    contact_id = control.seed(contacts=[contact])["contacts"][0]
    control.seed(products=list(products))
    return control, contact_id


def sales_order(contact: int, reference: str, external_ref: str, rows) -> dict:
    """A sales order to seed, in warehouse 2 on channel 1; `rows`: (sku, quantity, net, tax)."""
    return {
        "contactId": contact,
        "reference": reference,
        "externalRef": external_ref,
        "warehouseId": 2,
        "channelId": 1,
        "rows": [
            {
                "sku": sku,
                "quantity": quantity,
                "net": str(net),
                "tax": str(tax),
                "taxCode": TAX_CODE,
                "nominalCode": SALES_NOMINAL,
            }
            for sku, quantity, net, tax in rows
        ],
    }


def brightpearl_with_orders(code: str, n: int, *, net: str, tax: str):
    """What the per-return benchmarks start from: a sandbox account `code` (budget out of the
    way, account token `t`) with one customer, product SKU-A and `n` shipped sales orders
    `#i` / externalRef `shop-i` of one SKU-A each; the API URL pointed at it. Call after
    `in_process_django()`. Returns (server, control)."""
    server = SandboxServer(port=0).start()
    control = account_with_orders(server.url, server.api_url_template, code, n, net=net, tax=tax)
    return server, control


def account_with_orders(url: str, api_url: str, code: str, n: int, *, net: str, tax: str):
    """`brightpearl_with_orders` on a sandbox already running at `url` (API `api_url`)."""
    from django.conf import settings

    settings.BRIGHTPEARL_API_URL = api_url
    control, contact = new_account(
        url,
        code,
        "t",
        contact={"firstName": "B", "lastName": "E", "email": "b@x.com"},
        products=[{"sku": "SKU-A", "name": "A", "price": "10.00"}],
    )
    control.set_throttle(budget=100000, window_seconds=60)
    rows = [("SKU-A", 1, net, tax)]
    control.seed(orders=[sales_order(contact, f"#{i}", f"shop-{i}", rows) for i in range(n)])
    return control


def loop_connection(name: str, code: str, token: str, loop, **fields):
    """The connector's Connection between the sandbox account `code` and a Loop sandbox."""
    from connector.models import Connection  # Django is set up by now, not at import

    return Connection.objects.create(
        name=name,
        brightpearl_account=code,
        brightpearl_app_ref=f"{code}_app",
        brightpearl_account_token=token,
        platform="loop",
        platform_api_key=loop.api_key,
        platform_api_url=loop.api_url,
        refund_method_code="1200",
        **fields,
    )


# ------------------------------------------------------------------------- processes
class Proc:
    """A child process in its own session, so SIGKILL can take the worker and its pool."""

    def __init__(self, name: str, cmd: list[str], env: dict, logs: Path):
        self.name, self.log_path = name, logs / f"{name}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in kids.read_text().split()] if kids.exists() else []

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        """Stop the benchmark, with the end of its log, if this process has exited."""
        if not self.alive():
            raise SystemExit(f"{self.name} exited:\n{self.log()[-3000:]}")

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_group()
        else:  # the worker's pool children may outlive a killed parent
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def web_process(port: int, logs: Path) -> Proc:
    """The connector's web process (`runserver`, threaded) on a loopback port."""
    cmd = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    return Proc("web", cmd, os.environ.copy(), logs)


def celery_worker(name: str, node: str, concurrency: int, logs: Path) -> Proc:
    """A Celery worker (prefork, `concurrency` children) named `node`, on this environment's
    queue; `wait_for(lambda: worker_ready(proc), …)` until it consumes."""
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker"]
    cmd += [f"--concurrency={concurrency}", "--pool=prefork", "--loglevel=INFO"]
    cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{node}@%h"]
    return Proc(name, cmd, os.environ.copy(), logs)


def worker_ready(proc: Proc) -> bool:
    return "ready." in proc.log() or not proc.alive()


def wait_for(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.1,
    watch: Iterable[Proc] = (),
):
    """Poll until `predicate()` is truthy (returned) or `timeout` passes (SystemExit); stop
    early, with its log, when a watched process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for proc in watch:
            proc.check()
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def goods_in_posted_at(bp, note, timeout: float, watch: Iterable[Proc] = ()) -> float:
    """When the Brightpearl sandbox started POSTing the `goods-in-note.created` webhook of goods
    note `note` (epoch seconds): its delivery record's time less the delivery's duration."""
    delivery = wait_for(
        lambda: next(
            (
                d
                for d in bp.webhook_deliveries()
                if d["event"] == "goods-in-note.created"
                and f'"id":"{note}"' in (d["body"] or "")
                and d["outcome"] == "delivered"
            ),
            None,
        ),
        timeout,
        "the delivery record",
        0.05,
        watch,
    )
    return datetime.fromisoformat(delivery["at"]).timestamp() - delivery["durationMs"] / 1000.0
