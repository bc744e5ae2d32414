"""Django system checks for unsafe setups."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register()
def insecure_defaults(app_configs, **kwargs):
    problems = []
    if not settings.DEBUG and settings.SECRET_KEY == settings.INSECURE_DEFAULT_SECRET_KEY:
        problems.append(
            Warning(
                "SECRET_KEY is the demo default; secrets stored with it are not protected.",
                hint="Set SECRET_KEY and FIELD_ENCRYPTION_KEY in the environment.",
                id="connector.W001",
            )
        )
    if not settings.DEBUG and settings.SALT_KEY == ["demo-field-encryption-salt"]:
        problems.append(
            Warning(
                "FIELD_ENCRYPTION_KEY is the demo default.",
                hint="Set FIELD_ENCRYPTION_KEY to a long random value.",
                id="connector.W002",
            )
        )
    return problems


@register(Tags.database)
def webhooks_without_secrets(app_configs, **kwargs):
    """A Loop connection without its signing secret cannot verify Loop's webhooks (they are
    refused); run with `manage.py check --database default`."""
    from django.db import DatabaseError

    from .models import Connection, Platform

    try:
        names = list(
            Connection.objects.filter(platform=Platform.LOOP, enabled=True)
            .filter(platform_webhook_secret__isnull=True)
            .values_list("name", flat=True)
        )
    except DatabaseError:
        return []
    return [
        Warning(
            f"Connection {name!r} has no Loop webhook signing secret: Loop webhooks to it are "
            "refused, and returns arrive only by polling.",
            hint="Copy the secret from Loop's Developer Tools page into the connection.",
            id="connector.W003",
        )
        for name in names
    ]
