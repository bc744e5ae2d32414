"""python manage.py connector_reconcile <connection> --from DATE --to DATE [--csv FILE] [--fix]:
do the returns platform and Brightpearl agree for that window? (connector/services/reconcile.py)"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from brightpearl import BrightpearlError
from connector.secrets import redact
from connector.services import reconcile, reconcile_fix

from .connector_check import find_connection


class Command(BaseCommand):
    help = (
        "Compare the platform's returns and refunds created in a window with Brightpearl's "
        "credits and payments; list the differences by kind."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="connection name (or numeric ID)")
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--csv", help="write the differences as CSV to this file (- = stdout)")
        parser.add_argument(
            "--fix",
            action="store_true",
            help="create each missing credit or payment that is safe to create (through the "
            "normal exactly-once path), then compare again",
        )

    def handle(self, *args, name, start, end, csv, fix, **options):
        connection = find_connection(name)
        try:
            window = reconcile.parse_window(start, end)
            report = reconcile.reconcile(connection, *window)
            if fix:
                self._fix(connection, report)
                report = reconcile.reconcile(connection, *window)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except BrightpearlError as exc:
            raise CommandError(f"Brightpearl: {redact(str(exc), connection)}") from None
        if csv == "-":
            self.stdout.write(reconcile.report_csv(report), ending="")
            return
        self._print(report)
        if csv:
            Path(csv).write_text(reconcile.report_csv(report), encoding="utf-8")
            self.stdout.write(f"differences written to {csv}")

    def _print(self, report) -> None:
        if report.platform_error:
            self.stderr.write(redact(report.platform_error, report.connection))
        self.stdout.write(
            f"{'return':14} {'status':12} {'value':>9} {'refunded':>9} | "
            f"{'credits':16} {'credited':>9} {'paid':>9}  differences"
        )
        for row in report.rows:
            ret = row.ret
            value = "" if ret.value is None else f"{ret.value:.2f}"
            credits = ",".join(str(c["id"]) for c in row.credits) or "-"
            self.stdout.write(
                f"{(ret.rma_number or ret.external_id)[:14]:14} {(ret.status or '?')[:12]:12} "
                f"{value:>9} {row.refunded_total:>9.2f} | {credits[:16]:16} "
                f"{row.credit_total:>9.2f} {row.paid_total:>9.2f}  {', '.join(row.kinds) or 'ok'}"
            )
        for difference in report.differences:
            mark = " [fixable]" if difference.fix else ""
            self.stdout.write(
                f"{difference.label}{mark}: {difference.rma_number} — {difference.message}"
            )
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(report.counts().items()))
        self.stdout.write(
            f"{len(report.rows)} returns, {len(report.differences)} differences"
            f"{' (' + counts + ')' if counts else ''}; "
            f"{report.brightpearl_requests} Brightpearl requests"
        )

    def _fix(self, connection, report) -> None:
        for difference in report.differences:
            if not difference.fix:
                continue
            try:
                ctx = reconcile_fix.fix(
                    connection, difference.fix, difference.external_id, difference.refund_id
                )
            except reconcile_fix.NotFixable as exc:
                self.stdout.write(f"not fixed: {difference.rma_number}: {exc}")
                continue
            for line in ctx.printed:
                self.stdout.write(f"fix: {line}")
