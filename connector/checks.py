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


@register()
def write_lease_outlives_the_timeout(app_configs, **kwargs):
    """A write whose answer we gave up on must count as in flight for longer than Brightpearl
    can take to finish it, or a second write could land beside it (see exactly_once.py)."""
    from django.core.checks import Error

    lease, timeout = settings.CREDIT_ATTEMPT_LEASE_SECONDS, settings.BRIGHTPEARL_TIMEOUT
    if lease >= timeout + 60:
        return []
    return [
        Error(
            f"CREDIT_ATTEMPT_LEASE_SECONDS ({lease}) must be at least BRIGHTPEARL_TIMEOUT "
            f"({timeout:g}) + 60 s: a credit or payment POST that timed out could otherwise "
            "be sent again while Brightpearl is still executing the first one.",
            hint="Raise CREDIT_ATTEMPT_LEASE_SECONDS (default 300) or lower BRIGHTPEARL_TIMEOUT.",
            id="connector.E010",
        )
    ]
