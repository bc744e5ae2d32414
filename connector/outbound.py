"""Where the connector may send a merchant's credentials.

The Brightpearl host comes only from ``BRIGHTPEARL_API_URL`` and the datacentre code (checked
and encoded in ``brightpearl.client.format_template``). A returns-platform API URL is either the
platform's public one or an origin ``PLATFORM_URL_ALLOWLIST`` names (the demo's and the tests'
sandboxes); anything else — an internal address, a metadata service, one's own host — is
refused before a request carries the platform key there.

Staff alert webhooks (`alert_webhook_problem`) go to public https hosts only, or to origins
``ALERT_WEBHOOK_URL_ALLOWLIST`` names.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from returns.platforms import registry
from returns.platforms.errors import PlatformError


def public_api_url(platform: str) -> str:
    """The platform's public API (its registry entry); "" for one we never call."""
    spec = registry.find(platform)
    return spec.public_api_url if spec else ""


class PlatformURLNotAllowed(PlatformError):
    """The connection names a platform API URL the settings do not allow."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # unparseable: matches nothing
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _default_port(scheme: str) -> int | None:
    return {"https": 443, "http": 80}.get(scheme)


def _matches(url: str, allowed: str) -> bool:
    scheme, host, port = _origin(url)
    port = port if port is not None else _default_port(scheme)
    any_port = allowed.rstrip("/").endswith(":*")
    a_scheme, a_host, a_port = _origin(allowed.rstrip("/").removesuffix(":*"))
    a_port = a_port if a_port is not None else _default_port(a_scheme)
    return (
        bool(host)
        and (scheme, host) == (a_scheme, a_host)
        and (any_port or port == a_port)
        and a_port != -1
    )


def platform_url_problem(platform: str, url: str) -> str | None:
    """Why ``url`` may not be used for ``platform`` (None when it may)."""
    url = (url or "").strip()
    if not url:
        return None  # the platform's public API
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "The platform API URL must not contain a user name or password."
    public = public_api_url(platform)
    if public and _matches(url, public) and parts.path.rstrip("/") == urlsplit(public).path:
        return None
    if any(_matches(url, allowed) for allowed in settings.PLATFORM_URL_ALLOWLIST):
        return None
    return (
        f"{url} is not the platform's public API ({public or 'none'}). Other URLs are allowed "
        "only when PLATFORM_URL_ALLOWLIST names them (sandboxes); leave the field empty."
    )


def check_platform_url(platform: str, url: str) -> None:
    problem = platform_url_problem(platform, url)
    if problem:
        raise PlatformURLNotAllowed(problem)


# --- staff alert webhooks ---------------------------------------------------------------------


def alert_webhook_problem(url: str) -> str | None:
    """Why ``url`` may not receive alerts (None when it may): https on a public host, or an
    origin ``ALERT_WEBHOOK_URL_ALLOWLIST`` names. Checked on save and again before each post
    (a name that now resolves to an internal address is refused then)."""
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "The alert webhook URL must not contain a user name or password."
    if any(_matches(url, allowed) for allowed in settings.ALERT_WEBHOOK_URL_ALLOWLIST):
        return None
    if parts.scheme.lower() != "https" or not parts.hostname:
        return "The alert webhook URL must start with https:// (e.g. a Slack incoming webhook)."
    return _host_problem(parts.hostname)


def _host_problem(hostname: str) -> str | None:
    """None when every address the name resolves to is a public (global) one."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(hostname, 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return f"{hostname} could not be found (DNS); check the alert webhook URL."
    addresses = {info[4][0] for info in infos}
    if all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        return None
    return (
        f"{hostname} is not a public host. Alerts go to public https addresses only "
        "(ALERT_WEBHOOK_URL_ALLOWLIST names exceptions)."
    )
