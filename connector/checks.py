"""Django system checks for unsafe setups."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from returns.platforms import registry

from .models import Connection

# Placeholders people copy from .env.example or tutorials: as bad as the demo keys.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "replace-me", "your-secret", "insecure")


def _is_placeholder(value: str, demo_default: str) -> bool:
    lowered = (value or "").strip().lower()
    return not lowered or value == demo_default or any(m in lowered for m in PLACEHOLDER_MARKERS)


@register(Tags.security)
def insecure_keys(app_configs, **kwargs):
    """A real deployment (DEBUG off) refuses to start with a demo or placeholder key: secrets
    encrypted with a published key are not protected. Errors, not warnings, so `migrate`,
    `runserver` and the WSGI entry point (config/wsgi.py) all stop."""
    if settings.DEBUG:
        return []
    problems = []
    if _is_placeholder(settings.SECRET_KEY, settings.INSECURE_DEFAULT_SECRET_KEY):
        problems.append(
            Error(
                "SECRET_KEY is the demo default or a placeholder; with DEBUG off the connector "
                "refuses to start.",
                hint="Set SECRET_KEY to a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(50))'), or DEBUG=true on a laptop.",
                id="connector.E001",
            )
        )
    salts = settings.SALT_KEY
    if not salts or _is_placeholder(salts[0], settings.INSECURE_DEFAULT_FIELD_ENCRYPTION_KEY):
        problems.append(
            Error(
                "FIELD_ENCRYPTION_KEY is the demo default or a placeholder; stored tokens would "
                "be encrypted with a published key.",
                hint="Set FIELD_ENCRYPTION_KEY to a long random value (keep the old one after "
                "it in the comma list while rotating).",
                id="connector.E002",
            )
        )
    return problems


@register(Tags.database)
def webhooks_without_secrets(app_configs, **kwargs):
    """A connection to a platform that signs its webhooks (Loop) cannot verify them without
    its signing secret (they are refused); run with `manage.py check --database default`."""
    signed = {spec.kind: spec for spec in registry.webhook_platforms() if spec.signs_webhooks}

    if not kwargs.get("databases"):
        return []  # database checks run only when asked (`check --database default`)

    try:
        found = list(
            Connection.objects.filter(platform__in=signed, enabled=True)
            .filter(platform_webhook_secret__isnull=True)
            .values_list("name", "platform")
        )
    except DatabaseError:
        return []
    return [
        Warning(
            f"Connection {name!r} has no {signed[kind].label} webhook signing secret: "
            f"{signed[kind].label} webhooks to it are refused, and returns arrive only by polling.",
            hint=f"Copy the webhook signing secret from {signed[kind].label} into the connection.",
            id="connector.W003",
        )
        for name, kind in found
    ]


@register()
def write_lease_outlives_the_timeout(app_configs, **kwargs):
    """A write whose answer we gave up on must count as in flight for longer than Brightpearl
    can take to finish it, or a second write could land beside it (see exactly_once.py)."""
    lease, timeout = settings.CREDIT_ATTEMPT_LEASE_SECONDS, settings.BRIGHTPEARL_TIMEOUT
    if lease >= timeout + 60:
        return []
    return [
        Error(
            f"CREDIT_ATTEMPT_LEASE_SECONDS ({lease}) must be at least BRIGHTPEARL_TIMEOUT "
            f"({timeout:g}) + 60 s: a credit or payment POST that timed out could otherwise "
            "be sent again while Brightpearl is still executing the first one.",
            hint="Raise CREDIT_ATTEMPT_LEASE_SECONDS (default 120) or lower BRIGHTPEARL_TIMEOUT.",
            id="connector.E010",
        )
    ]


@register()
def request_budget_is_usable(app_configs, **kwargs):
    """The per-account request budget must leave the sync lane something: a budget of 0 (or
    a reserve as large as the budget) would stop every sync, and the throttle cannot count it."""
    budget = settings.BRIGHTPEARL_REQUESTS_PER_MINUTE
    reserve = settings.BRIGHTPEARL_RESERVED_FOR_INBOUND
    if budget >= 1 and 0 <= reserve < budget:
        return []
    return [
        Error(
            f"BRIGHTPEARL_REQUESTS_PER_MINUTE ({budget}) must be at least 1 and "
            f"BRIGHTPEARL_RESERVED_FOR_INBOUND ({reserve}) between 0 and one less than it.",
            hint="Brightpearl's documented limit is 200 a minute; the default reserve is 6.",
            id="connector.E011",
        )
    ]
