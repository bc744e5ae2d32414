"""python manage.py connector_backfill <connection> --since DATE [--dry-run]: import the returns
created on the platform from DATE, in the foreground, printing progress
(connector/services/backfill.py). Run it with --dry-run first."""

from django.core.management.base import BaseCommand, CommandError

from connector.secrets import redact
from connector.services import backfill
from connector.services.reconcile import parse_window

from .connector_check import find_connection


class Command(BaseCommand):
    help = "Import returns created on the platform since a date, crediting them exactly once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="connection name (or numeric ID)")
        parser.add_argument("--since", help="first day, YYYY-MM-DD")
        parser.add_argument("--resume", type=int, metavar="JOB", help="resume a paused job")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="show what would be imported, created and adopted; write nothing",
        )

    def handle(self, *args, name, since, resume, dry_run, **options):
        connection = find_connection(name)
        job = self._job(connection, since, resume, dry_run)
        self.stdout.write(f"job {job.pk}: {job}")
        outcome = backfill.run_backfill(job.pk, on_progress=self._progress)
        job.refresh_from_db()
        if outcome.job is None:
            self.stdout.write(f"job {job.pk} is {job.get_status_display().lower()}; not run again")
            return
        for line in job.plan:
            self.stdout.write(line)
        self.stdout.write(
            f"job {job.pk}: {job.get_status_display()}; {job.brightpearl_requests} Brightpearl "
            f"requests. {redact(job.message, connection)}"
        )
        if outcome.retry_after is not None:
            self.stdout.write(
                f"paused: resume after {outcome.retry_after:.0f} s with "
                f"python manage.py connector_backfill {connection.pk} --resume {job.pk}"
            )
        if job.status == job.Status.FAILED:
            raise CommandError(redact(job.message, connection))

    def _job(self, connection, since, resume, dry_run):
        if resume:
            job = connection.backfill_jobs.filter(pk=resume).first()
            if job is None:
                raise CommandError(f"connection {connection.name!r} has no backfill job {resume}")
            return job
        if not since:
            raise CommandError("give --since DATE (or --resume JOB)")
        try:
            start, _ = parse_window(since, since)
            return backfill.request_backfill(connection, start, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc).replace("--from", "--since")) from None

    def _progress(self, job) -> None:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(job.counts.items()))
        reached = f"{job.reached:%Y-%m-%d}" if job.reached else "-"
        self.stdout.write(f"  {job.progress:4.0%} read up to {reached}: {counts or 'nothing yet'}")
