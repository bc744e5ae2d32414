"""python manage.py connector_scrub_secrets [--dry-run]: remove secrets from stored log texts.

Errors are redacted where they are built now, but texts stored before that (check reports, sync
run and event messages, binding errors, webhook event errors) may hold a token a server echoed.
This rewrites every free-text column of the connector's per-connection records with that
connection's secrets (and echoed credential headers) masked. Raw inbound webhook bodies and
headers are left as received.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction

from brightpearl.errors import redact_deep
from connector.models import Connection
from connector.secrets import redact, stored_secrets

RAW_FIELDS = {"body", "headers", "raw"}


def _text_fields(model) -> list[str]:
    return [
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, models.TextField)
        and f.name not in RAW_FIELDS
        and not type(f).__module__.startswith("encrypted_fields")
    ]


def _per_connection_models() -> list[tuple[type[models.Model], list[str]]]:
    found = []
    for model in apps.get_app_config("connector").get_models():
        has_connection = any(
            getattr(f, "related_model", None) is Connection and f.name == "connection"
            for f in model._meta.concrete_fields
        )
        fields = _text_fields(model)
        if has_connection and fields:
            found.append((model, fields))
    return found


class Command(BaseCommand):
    help = "Mask stored secrets in check reports and log texts written before redaction."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")

    def handle(self, *args, dry_run: bool, **options):
        changed = 0
        targets = _per_connection_models()
        for connection in Connection.objects.order_by("pk"):
            secrets = stored_secrets(connection)
            with transaction.atomic():
                report = redact_deep(connection.last_check_report, secrets)
                if report != connection.last_check_report:
                    changed += 1
                    if not dry_run:
                        Connection.objects.filter(pk=connection.pk).update(last_check_report=report)
                for model, fields in targets:
                    rows = model.objects.filter(connection=connection).values_list("pk", *fields)
                    for pk, *values in rows.iterator():
                        cleaned = {}
                        for name, value in zip(fields, values, strict=True):
                            masked = redact(value, connection) if value else value
                            if masked != value:
                                cleaned[name] = masked
                        if cleaned:
                            changed += 1
                            if not dry_run:
                                model.objects.filter(pk=pk).update(**cleaned)
        verb = "would mask" if dry_run else "masked"
        self.stdout.write(f"{verb} secrets in {changed} stored record(s)")
