"""python manage.py connector_sync <connection> [--dry-run]: one sync in the foreground."""

import json

from django.core.management.base import BaseCommand, CommandError

from connector.models import SyncRun
from connector.services.sync import preview_sync, run_sync
from connector.tasks import after_sync
from connector.wording import counts_in_words

from .connector_check import find_connection


class Command(BaseCommand):
    help = "Run one sync of a connection now and print what it did."

    def add_arguments(self, parser):
        parser.add_argument("name", help="connection name (or numeric ID)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="read from the platform and Brightpearl, write nothing; show the credits it "
            "would create",
        )

    def handle(self, *args, name: str, dry_run: bool, **options):
        connection = find_connection(name)
        if dry_run:
            result = preview_sync(connection)
            for line in result.printed:
                self.stdout.write(line)
            done = counts_in_words(result.counts, dry_run=True)
            self.stdout.write(
                f"dry run — {done}; {result.requests_made} Brightpearl requests; "
                "nothing was written"
            )
            return
        outcome = run_sync(connection, trigger=SyncRun.Trigger.COMMAND)
        after_sync(outcome)
        result = outcome.run
        for event in result.events.order_by("pk"):
            self.stdout.write(
                f"{event.kind:9} {event.outcome:9} {event.rma_number or '-':12} "
                f"{event.credit_id or '':>8} {event.message}"
            )
        self.stdout.write(
            f"run {result.pk}: {result.status}; counts {json.dumps(result.counts, sort_keys=True)}"
            f"; {result.brightpearl_requests} Brightpearl requests"
            + (f"; {result.message}" if result.message else "")
        )
        if result.status == SyncRun.Status.FAILED:
            raise CommandError(result.message)
