"""Build the returns-platform adapter for a connection (the connector owns the credentials)."""

from returns.platforms import REGISTRY, ReturnsPlatform, get_platform

from ..models import Connection
from ..outbound import check_platform_url


def has_adapter(connection: Connection) -> bool:
    """The generic intake platform pushes to us; it has nothing to poll or write back to."""
    return connection.platform in REGISTRY


def adapter_for(connection: Connection, **options) -> ReturnsPlatform | None:
    """Every request the adapter sends first checks the connection's API URL against the
    settings (``PlatformURLNotAllowed``, a PlatformError), whoever stored it (admin, shell,
    command): the key never travels to a URL that is not allowed. Verifying and parsing
    inbound webhooks send nothing and are unaffected."""
    if not has_adapter(connection):
        return None
    platform, base_url = connection.platform, connection.platform_api_url
    options.setdefault("url_guard", lambda url: check_platform_url(platform, base_url))
    if connection.platform == "returngo" and "budget" not in options:
        from .call_budget import SharedDailyCallBudget, budget_key

        options["budget"] = SharedDailyCallBudget(
            budget_key(connection.platform, connection.platform_api_key or "")
        )
    return get_platform(
        connection.platform,
        api_key=connection.platform_api_key or "",
        shop_name=connection.platform_shop_name,
        base_url=connection.platform_api_url,
        webhook_secret=connection.platform_webhook_secret or "",
        **options,
    )
