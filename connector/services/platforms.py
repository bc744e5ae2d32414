"""Build the returns-platform adapter for a connection (the connector owns the credentials).
What a platform needs — a URL guard, a shared daily call budget — is read from its registry
entry (`returns.platforms.registry`), never from its name."""

from django.conf import settings

from returns.platforms import ReturnsPlatform, get_platform, registry

from ..models import Connection
from ..outbound import check_platform_url
from .call_budget import SharedDailyCallBudget, budget_key


def has_adapter(connection: Connection) -> bool:
    """A platform that pushes to us (the generic intake API) has nothing to poll or write to."""
    spec = registry.find(connection.platform)
    return spec is not None and spec.has_adapter


def adapter_for(connection: Connection, **options) -> ReturnsPlatform | None:
    """Every request the adapter sends first checks the connection's API URL against the
    settings (``PlatformURLNotAllowed``, a PlatformError), whoever stored it (admin, shell,
    command): the key never travels to a URL that is not allowed. Verifying and parsing
    inbound webhooks send nothing and are unaffected."""
    if not has_adapter(connection):
        return None
    spec = registry.get(connection.platform)
    platform, base_url = connection.platform, connection.platform_api_url
    options.setdefault("url_guard", lambda url: check_platform_url(platform, base_url))
    rate_limit = settings.PLATFORM_RATE_LIMITS.get(platform, spec.rate_limit)
    if rate_limit:
        options.setdefault("rate_limit", tuple(rate_limit))
    if spec.daily_call_limit and "budget" not in options:
        options["budget"] = call_budget_for(connection)
    for setting in spec.optional_settings:
        options.setdefault(setting, getattr(connection, setting))
    return get_platform(
        connection.platform,
        api_key=connection.platform_api_key or "",
        shop_name=connection.platform_shop_name,
        base_url=connection.platform_api_url,
        webhook_secret=connection.platform_webhook_secret or "",
        **options,
    )


def call_budget_for(connection: Connection) -> SharedDailyCallBudget | None:
    """The daily call budget the connection's API key shares (None: the platform has no daily
    limit). Reading `remaining` spends nothing."""
    spec = registry.find(connection.platform)
    if spec is None or not spec.daily_call_limit:
        return None
    return SharedDailyCallBudget(
        budget_key(connection.platform, connection.platform_api_key or ""),
        limit=spec.daily_call_limit,
        write_reserve=spec.daily_write_reserve,
        label=spec.label,
    )
