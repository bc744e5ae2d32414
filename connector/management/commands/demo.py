"""`python manage.py demo` (what `make demo` runs): the whole connector on this machine.

Starts the Brightpearl and Loop sandboxes (in this process), seeds a store whose returns tell
the story — a credit made, a return received and processed and its refund recorded, a return
flagged because an item was never sold on that order — creates the connection, then runs the
web server, a Celery worker and beat, and narrates what the sync log records. Ctrl-C stops all.
Works on a bare laptop: SQLite and a filesystem broker unless DATABASE_URL / REDIS_URL say
otherwise. Runs as a development setup (manage.py turns DEBUG on for it). Every port is checked
before anything starts, and `var/demo.env` is written so that the other commands
(`connector_check`, `connector_sync`, `connector_webhooks`) reach the demo's sandboxes from
another terminal after `set -a; . var/demo.env; set +a`.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from brightpearl.sandbox import SandboxControl, SandboxServer
from brightpearl.sandbox.control_api import seed_account
from brightpearl.sandbox.demo import DEMO_DATA
from connector.models import BindingState, Connection, SalesCredit, SyncEvent, SyncRun
from connector.services import subscriptions
from connector.tasks import request_syncs_now
from returns import outcomes
from returns.models import Refund
from returns.platforms.loop.sandbox import LoopSandbox

ACCOUNT = "demo-store"
LOOP_KEY = "loop-demo-key"
DEMO_CONNECTION = "Demo store (Loop)"
# What the other commands need to reach the demo's sandboxes (written to var/demo.env).
ENV_FILE_KEYS = (
    "BRIGHTPEARL_API_URL",
    "PUBLIC_BASE_URL",
    "DEBUG",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CONNECTOR_VAR_DIR",
)


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports(ports: dict[str, int]) -> None:
    """Refuse to start, naming a free alternative, when a port is taken: otherwise the banner
    would show an address (and password) that belong to whatever already listens there."""
    if len(set(ports.values())) < len(ports):
        raise CommandError(f"{', '.join(ports)} must be three different ports")
    used = set(ports.values())
    suggestions = {}
    for option, port in ports.items():
        if not port_free(port):
            free = next(p for p in range(port + 1, port + 500) if p not in used and port_free(p))
            used.add(free)
            suggestions[option] = (port, free)
    if suggestions:
        reasons = "; ".join(
            f"port {port} ({option}) is already in use" for option, (port, _) in suggestions.items()
        )
        args = " ".join(f"{option} {free}" for option, (_, free) in suggestions.items())
        raise CommandError(
            f"{reasons}. Nothing was started. Free ports now: "
            f'make demo DEMO_ARGS="{args}"  (or python manage.py demo {args})'
        )


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    lines = [
        "# Written by `manage.py demo` for the other commands while the demo runs:",
        "#   set -a; . var/demo.env; set +a",
    ]
    lines += [f"{key}={env[key]}" for key in ENV_FILE_KEYS if env.get(key)]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # it may hold a database URL with a password
    return path


def child_env(port: int, bp, loop) -> dict:
    """The environment of web, worker and beat: the sandboxes' URLs, the demo keys allowed."""
    return {
        **os.environ,
        "BRIGHTPEARL_API_URL": bp.api_url_template,
        "DEBUG": "true",
        "PLATFORM_URL_ALLOWLIST": loop.api_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        # The demo knows runserver is a development server (Django 5.2+).
        "DJANGO_RUNSERVER_HIDE_WARNING": "true",
    }


def stop_children(procs: dict) -> None:
    """SIGINT each child (a clean Celery shutdown), then kill whatever is left after 15 s."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


class Command(BaseCommand):
    help = "Run the connector against the sandboxes: web, worker, beat, and a narrated story."
    requires_system_checks = []  # run below, once the ports are known to be free

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=8000, help="web server (admin) port; default 8000"
        )
        parser.add_argument(
            "--brightpearl-port",
            type=int,
            default=8900,
            help="Brightpearl sandbox port; default 8900",
        )
        parser.add_argument(
            "--loop-port", type=int, default=8901, help="Loop sandbox port; default 8901"
        )
        parser.add_argument(
            "--exit-after",
            type=float,
            default=0,
            help="stop after this many seconds (default: run until Ctrl-C)",
        )
        parser.add_argument(
            "--exit-when-done",
            action="store_true",
            help="stop once the story has played out (every step is in the sync log)",
        )

    def handle(
        self, *args, port, brightpearl_port, loop_port, exit_after, exit_when_done, **options
    ):
        check_ports(
            {"--port": port, "--brightpearl-port": brightpearl_port, "--loop-port": loop_port}
        )
        self.say("Migrating the database…")
        call_command("migrate", interactive=False, verbosity=0)
        password = self.admin_user()

        bp = SandboxServer(host="127.0.0.1", port=brightpearl_port).start()
        loop = LoopSandbox("127.0.0.1", loop_port, api_key=LOOP_KEY).start()
        token = secrets.token_urlsafe(16)
        account = bp.state.create_account(
            {"account": ACCOUNT, "appRef": f"{ACCOUNT}_app", "accountToken": token}
        )
        with bp.state.lock:
            seed_account(account, DEMO_DATA)
        settings.BRIGHTPEARL_API_URL = bp.api_url_template
        settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{port}"
        settings.PLATFORM_URL_ALLOWLIST = [loop.api_url]  # the Loop sandbox, nothing else
        connection = self.connection(token, loop)
        returns = self.seed_returns(loop)
        self.loop = loop

        env = child_env(port, bp, loop)
        env_file = write_env_file(settings.VAR_DIR / "demo.env", env)
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        logs = settings.VAR_DIR / "demo-logs"
        logs.mkdir(parents=True, exist_ok=True)
        children = {
            "web": manage + ["runserver", f"127.0.0.1:{port}", "--noreload"],
            "worker": celery + ["worker", "--loglevel=INFO", "--concurrency=2"],
            "beat": celery
            + ["beat", "--loglevel=INFO", f"--schedule={settings.VAR_DIR / 'celerybeat-schedule'}"],
        }
        procs = {}
        try:
            for name, cmd in children.items():
                out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
                procs[name] = subprocess.Popen(  # noqa: S603 (our own fixed commands)
                    cmd, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            self.banner(port, password, bp, loop, logs, env_file)
            self.wait_for_web(port, procs["web"])
            registered = subscriptions.register(connection)
            self.say(f"Subscribed to Brightpearl webhooks: {', '.join(sorted(registered.created))}")
            self.story(connection, bp, returns, procs, exit_after, exit_when_done)
        except KeyboardInterrupt:
            pass
        finally:
            self.say("Stopping…")
            stop_children(procs)
            bp.stop()
            loop.stop()

    # --- setup -----------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def admin_user(self) -> str:
        password = secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password

    def connection(self, token: str, loop: LoopSandbox) -> Connection:
        connection, _ = Connection.objects.update_or_create(
            name=DEMO_CONNECTION,
            defaults={
                "enabled": True,
                "brightpearl_account": ACCOUNT,
                "brightpearl_datacentre": "euw1",
                "brightpearl_app_ref": f"{ACCOUNT}_app",
                "brightpearl_account_token": token,
                "platform": "loop",
                "platform_api_key": LOOP_KEY,
                "platform_api_url": loop.api_url,
                # Loop's signing secret: without it Loop's webhooks would be refused (W003).
                "platform_webhook_secret": loop.webhook_secret,
                "refund_method_code": "1200",
                "customer_ref_prefix": "RMA-",
                "received_status_id": 12,
                "cancelled_credit_status_id": 14,  # the sandbox's "Credit cancelled"
                "sync_interval_minutes": 1,
                "platform_watermark": None,
            },
        )
        connection.warehouse_mappings.update_or_create(
            destination_id="101", defaults={"warehouse_id": 3}
        )
        return connection

    def seed_returns(self, loop: LoopSandbox) -> dict[str, dict]:
        loop.add_destination("Returns centre", id=101)
        return {
            "credit": loop.add_return(
                order_name="#1001",
                order_id="shop-1001",
                currency="GBP",
                destination_id="101",
                lines=[{"sku": "TSHIRT-BLK-M", "quantity": 2, "price": "20.00"}],
                fire=False,
            ),
            "received": loop.add_return(
                order_name="#1002",
                order_id="shop-1002",
                currency="GBP",
                lines=[
                    {"sku": "JEANS-IND-32", "price": "70.00"},
                    # taken as store credit: a note on the credit, nothing from the bank
                    {
                        "sku": "SOCKS-3PK",
                        "quantity": 2,
                        "price": "10.00",
                        "outcome": "store_credit",
                    },
                ],
                fire=False,
            ),
            "flagged": loop.add_return(
                order_name="#1003",
                order_id="shop-1003",
                currency="GBP",
                lines=[{"sku": "TSHIRT-BLK-L"}, {"sku": "MUG-WHITE"}],
                fire=False,
            ),
            # The customer keeps the socks (returnless): credited, processed without a receipt.
            "kept": loop.add_return(
                order_name="#1002",
                order_id="shop-1002",
                currency="GBP",
                lines=[{"sku": "SOCKS-3PK", "price": "10.00", "resolution": "keep"}],
                fire=False,
            ),
            # Cancelled on Loop after its credit is made (the story does it).
            "cancelled": loop.add_return(
                order_name="#1001",
                order_id="shop-1001",
                currency="GBP",
                lines=[{"sku": "HOODIE-GRY-M", "price": "50.00"}],
                fire=False,
            ),
        }

    def banner(self, port, password, bp, loop, logs, env_file) -> None:
        try:
            shown = env_file.relative_to(Path.cwd())
        except ValueError:
            shown = env_file
        today = timezone.localdate().isoformat()
        self.say(
            "\n"
            f"  Admin:            http://127.0.0.1:{port}/admin/   user: admin   "
            f"password: {password}\n"
            f"  Brightpearl sandbox: {bp.url}   (account {ACCOUNT})\n"
            f"  Loop sandbox:        {loop.api_url}\n"
            f"  Process logs:        {logs}\n"
            f"  Other commands:      set -a; . {shown}; set +a   then e.g.\n"
            f'                       python manage.py connector_check "{DEMO_CONNECTION}"\n'
            f'                       python manage.py connector_reconcile "{DEMO_CONNECTION}" '
            f"--from {today} --to {today}\n"
            "  Press Ctrl-C to stop.\n"
        )

    def wait_for_web(self, port: int, proc, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise CommandError("the web process stopped; see var/demo-logs/web.log")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2)  # noqa: S310
                return
            except OSError:
                time.sleep(0.3)
        raise CommandError(f"the web server did not answer on port {port}")

    # --- the story -------------------------------------------------------------------------
    def story(self, connection, bp, returns, procs, exit_after, exit_when_done) -> None:
        started = time.monotonic()
        self.say("Asking the worker for a first sync…")
        request_syncs_now([connection.pk], SyncRun.Trigger.ADMIN)
        shown: set[int] = set()
        received, refunded = False, set()
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise CommandError(f"the {name} process stopped; see var/demo-logs/{name}.log")
            for event in (
                SyncEvent.objects.filter(connection=connection)
                .exclude(pk__in=shown)
                .select_related("run")
                .order_by("pk")
            ):
                shown.add(event.pk)
                self.say("  " + narrate(event))
                if event.kind == SyncEvent.Kind.PROCESS and event.rma_number not in refunded:
                    refunded.add(event.rma_number)
                    self.say(
                        "Loop processed the return and refunded the customer; syncing "
                        "again to record the refund…"
                    )
                    request_syncs_now([connection.pk], SyncRun.Trigger.ADMIN)
            if not received:
                credit = self._credit_for(connection, returns["received"])
                # Receive once the first sync is over, so it is Brightpearl's webhook (not that
                # sync's receipt step) that tells the connector.
                busy = SyncRun.objects.filter(
                    connection=connection, status=SyncRun.Status.RUNNING
                ).exists() or not self._refunds_recorded(connection, refunded)
                if credit and not busy:
                    received = True
                    self.say(
                        f"The warehouse receives return {returns['received']['id']} "
                        f"in Brightpearl (credit {credit}); Brightpearl tells the connector by "
                        "webhook…"
                    )
                    SandboxControl(bp.url, ACCOUNT).receive(credit)
            if received and self._receipt_recorded(connection, returns):
                # After the webhook's receipt, so the syncs these cases ask for cannot take
                # the receipt by polling first.
                self.after_credit_cases(connection, returns)
            if exit_after and time.monotonic() - started > exit_after:
                return
            if (
                exit_when_done
                and self.played_out(connection, returns)
                and len(shown) == SyncEvent.objects.filter(connection=connection).count()
            ):
                self.say("The story has played out: every step is in the sync log.")
                return
            time.sleep(0.5)

    @staticmethod
    def played_out(connection, returns) -> bool:
        """Every refund of the received return is recorded (the bank refund and the store
        credit, which Loop may report in different syncs), and both after-credit cases
        happened."""
        done = SyncEvent.objects.filter(connection=connection, outcome=SyncEvent.Outcome.SUCCEEDED)
        refunds = Refund.objects.filter(
            rma__connection=connection, rma__external_id=str(returns["received"]["id"])
        )
        return (
            refunds.filter(outcome=outcomes.STORE_CREDIT).exists()
            and not refunds.exclude(payment__state=BindingState.CREATED).exists()
            and done.filter(kind=SyncEvent.Kind.ENDED).exists()
            and done.filter(kind=SyncEvent.Kind.ADJUST).exists()
        )

    def after_credit_cases(self, connection, returns) -> None:
        """Once their credits exist: one return is cancelled on Loop, another edited (one
        T-shirt fewer) — the connector cancels the one credit and adjusts the other."""
        done = self.__dict__.setdefault("_after_credit_done", set())
        cases = {
            "cancelled": (
                "The customer cancels return {id} on Loop after its credit {credit} was made…",
                lambda r: self.loop.set_state(r["id"], "cancelled"),
            ),
            "credit": (
                "Loop staff edit return {id} (one T-shirt fewer) after its credit {credit} "
                "was made…",
                lambda r: self.loop.edit_return(
                    r["id"], [{"sku": "TSHIRT-BLK-M", "quantity": 1, "price": "20.00"}]
                ),
            ),
        }
        for name, (words, act) in cases.items():
            credit = self._credit_for(connection, returns[name])
            if name in done or not credit:
                continue
            done.add(name)
            self.say(words.format(id=returns[name]["id"], credit=credit))
            act(returns[name])
            request_syncs_now([connection.pk], SyncRun.Trigger.ADMIN)

    @staticmethod
    def _refunds_recorded(connection, rma_numbers: set) -> bool:
        """The syncs asked for to record refunds have done so (they would otherwise take the
        next receipt by polling, before Brightpearl's webhook)."""
        recorded = set(
            SyncEvent.objects.filter(
                connection=connection,
                kind=SyncEvent.Kind.REFUND,
                outcome=SyncEvent.Outcome.SUCCEEDED,
                rma_number__in=rma_numbers,
            ).values_list("rma_number", flat=True)
        )
        return recorded >= set(rma_numbers)

    @staticmethod
    def _receipt_recorded(connection, returns) -> bool:
        return SyncEvent.objects.filter(
            connection=connection,
            kind=SyncEvent.Kind.RECEIPT,
            outcome=SyncEvent.Outcome.SUCCEEDED,
            rma__external_id=str(returns["received"]["id"]),
        ).exists()

    @staticmethod
    def _credit_for(connection, loop_return) -> int | None:
        binding = SalesCredit.objects.filter(
            connection=connection, rma__external_id=str(loop_return["id"]), credit_id__isnull=False
        ).first()
        return binding.credit_id if binding else None


# What each sync-log entry means, in the merchant's words (kind, outcome) → sentence start.
NARRATION = {
    ("intake", "succeeded"): "Return {rma} arrived from Loop",
    ("intake", "flagged"): "Return {rma} arrived from Loop with a problem",
    ("credit", "succeeded"): "Sales credit {credit} created in Brightpearl for return {rma}",
    ("credit", "flagged"): "No sales credit for return {rma}",
    ("receipt", "succeeded"): "Brightpearl received the goods of return {rma}",
    ("process", "succeeded"): "Return {rma} processed on Loop",
    ("flag", "succeeded"): "Return {rma} flagged on Loop for staff",
    ("flag", "flagged"): "Return {rma} flagged on Loop for staff",
    ("refund", "succeeded"): "Loop's refund of return {rma} recorded in Brightpearl",
    ("goods_in", "succeeded"): "Goods-in note created in Brightpearl for return {rma}",
    ("close", "succeeded"): "Sales credit {credit} of return {rma} closed",
    ("ended", "succeeded"): "Sales credit {credit} cancelled: return {rma} ended on Loop",
    ("ended", "flagged"): "Return {rma} ended on Loop after its credit; flagged for staff",
    ("adjust", "succeeded"): "Sales credit {credit} adjusted to the edited return {rma}",
}


def narrate(event: SyncEvent) -> str:
    """One readable line for a sync-log entry: what happened, how we learned it, and why."""
    template = NARRATION.get((event.kind, event.outcome))
    fields = {"rma": event.rma_number or "-", "credit": event.credit_id or "-"}
    if template is None:
        template = (
            f"{event.get_kind_display()} {event.get_outcome_display().lower()}: return {{rma}}"
        )
    line = template.format(**fields)
    if event.run and event.run.trigger == SyncRun.Trigger.WEBHOOK:
        line += " (told by webhook)"
    if event.message:
        line += f" — {event.message}"
    return line
