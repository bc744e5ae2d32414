"""python manage.py connector_check <name>: check a connection against Brightpearl."""

from django.core.management.base import BaseCommand, CommandError

from connector.models import Connection
from connector.services.connection_check import check_connection


class Command(BaseCommand):
    help = "Check a connection's credentials and settings against Brightpearl, field by field."

    def add_arguments(self, parser):
        parser.add_argument("name", help="connection name (or numeric ID)")

    def handle(self, *args, name: str, **options):
        connection = find_connection(name)
        items = check_connection(connection)
        for item in items:
            mark = self.style.SUCCESS("ok  ") if item.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {item.field}: {item.message}")
        if not all(i.ok for i in items):
            raise CommandError(f"connection {connection.name!r} failed the check")
        self.stdout.write(self.style.SUCCESS(f"connection {connection.name!r} is ready"))


def find_connection(name: str) -> Connection:
    query = Connection.objects.filter(name=name.strip())
    if name.strip().isdigit():
        query = query | Connection.objects.filter(pk=int(name))
    connection = query.first()
    if connection is None:
        known = ", ".join(Connection.objects.values_list("name", flat=True)) or "none"
        raise CommandError(f"no connection named {name!r} (known: {known})")
    return connection
