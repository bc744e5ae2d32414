"""python manage.py connector_webhooks <connection> --register|--list|--remove|--test|--rotate

Brightpearl webhook subscriptions of a connection. URIs are printed with the secret hidden.
"""

from django.core.management.base import BaseCommand, CommandError

from brightpearl import BrightpearlError
from connector.services import subscriptions

from .connector_check import find_connection


class Command(BaseCommand):
    help = "Register, list, remove or test a connection's Brightpearl webhook subscriptions."

    def add_arguments(self, parser):
        parser.add_argument("name", help="connection name (or numeric ID)")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument(
            "--register",
            action="store_true",
            help="create missing subscriptions, keep correct ones, remove stale ones",
        )
        group.add_argument("--list", action="store_true", help="show our subscriptions")
        group.add_argument("--remove", action="store_true", help="delete all our subscriptions")
        group.add_argument(
            "--test", action="store_true", help="fire a test delivery and check it arrived"
        )
        group.add_argument(
            "--rotate",
            action="store_true",
            help="new webhook secret, then re-register (stale subscriptions removed)",
        )

    def handle(self, *args, name, register, list, remove, test, rotate, **options):  # noqa: A002
        connection = find_connection(name)
        try:
            if register or rotate:
                action = subscriptions.rotate_secret if rotate else subscriptions.register
                result = action(connection)
                for event, webhook_id in sorted(result.kept.items()):
                    self.stdout.write(f"kept     {webhook_id:>6} {event}")
                for event, webhook_id in sorted(result.created.items()):
                    self.stdout.write(f"created  {webhook_id:>6} {event}")
                for webhook_id in result.removed:
                    self.stdout.write(f"removed  {webhook_id:>6} (stale)")
                self.stdout.write(
                    ("Secret rotated; " if rotate else "")
                    + f"{result.summary()}; endpoint "
                    + subscriptions.redact(subscriptions.webhook_uri(connection), connection)
                )
            elif list:
                subs = subscriptions.inspect(connection)
                for sub in subs:
                    self.stdout.write(f"{sub.id:>6} {sub.state:6} {sub.event:30} {sub.uri}")
                if not subs:
                    self.stdout.write("No Brightpearl webhook subscriptions for this connection.")
            elif remove:
                removed = subscriptions.remove(connection)
                self.stdout.write(f"Removed {len(removed)} subscription(s).")
            elif test:
                outcome = subscriptions.send_test(connection)
                self.stdout.write(outcome.message)
                if outcome.arrived is None:
                    raise CommandError("The test delivery did not arrive.")
        except BrightpearlError as exc:
            raise CommandError(
                f"Brightpearl error: {subscriptions.redact(str(exc), connection)}"
            ) from None
