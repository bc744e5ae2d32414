"""System checks for deployment mistakes: errors in production (DEBUG off), so `migrate` — the
first thing every deployment runs — stops with the reason; warnings in development.

* E101/W101: webhooks are enabled but PUBLIC_BASE_URL is missing, not http(s), the example.*
  placeholder, or (in production) this machine (loopback): Brightpearl would be told to deliver
  where it cannot reach.
* E102/W102: ALLOWED_HOSTS does not contain PUBLIC_BASE_URL's host: every webhook would be
  refused with HTTP 400.
* E103: the Celery broker is a local folder (filesystem://): workers on another host never see
  the tasks. E104: REDIS_URL is unset: the Brightpearl request budget, the OAuth refresh lock and
  the cache would be per process or per host, so several workers overspend an account's budget
  and race a rotating refresh token. Errors with DEBUG off only: one process on a laptop is the
  demo's intended set-up.
* E105/W105: the Redis broker's visibility timeout is shorter than the hard task time limit plus
  the longest broker countdown: a task still running (or still waiting for its countdown) would
  be handed to a second worker. Longer delays live in the database (services/pending.py), so
  the timeout can stay short; docs/deployment.md.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.http.request import validate_host

from .services.pending import BROKER_COUNTDOWN_MAX_SECONDS

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _is_placeholder(host: str) -> bool:
    """example.com/.net/.org are reserved for documentation (RFC 2606): never a real server."""
    host = host.lower().rstrip(".")
    return any(
        host == d or host.endswith("." + d) for d in ("example.com", "example.net", "example.org")
    )


def _problem(message: str, hint: str, number: int):
    if settings.DEBUG:
        return Warning(message, hint=hint, id=f"connector.W{number}")
    return Error(message, hint=hint, id=f"connector.E{number}")


@register(deploy=False)
def public_base_url(app_configs, **kwargs):
    url = (settings.PUBLIC_BASE_URL or "").strip()
    problems = []
    if settings.WEBHOOKS_ENABLED:
        parts = urlsplit(url)
        if not url:
            problems.append(
                _problem(
                    "PUBLIC_BASE_URL is not set, but Brightpearl webhooks are enabled: the "
                    "connector cannot tell Brightpearl where to deliver them.",
                    "Set PUBLIC_BASE_URL to the address Brightpearl reaches this service at, "
                    "e.g. https://connector.yourshop.com (or WEBHOOKS_ENABLED=false to rely on "
                    "polling alone).",
                    101,
                )
            )
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                _problem(
                    f"PUBLIC_BASE_URL {url!r} is not an http(s) URL with a host.",
                    "Write it as https://host[:port] with no path.",
                    101,
                )
            )
        elif _is_placeholder(parts.hostname):
            problems.append(
                _problem(
                    f"PUBLIC_BASE_URL {url!r} is the example from .env.example.",
                    "Set PUBLIC_BASE_URL to the public address of this service.",
                    101,
                )
            )
        elif _is_loopback(parts.hostname) and not settings.DEBUG:  # loopback is normal in dev
            problems.append(
                _problem(
                    f"PUBLIC_BASE_URL {url!r} points at this machine: Brightpearl cannot "
                    "deliver webhooks there.",
                    "Set PUBLIC_BASE_URL to the public address of this service (or "
                    "WEBHOOKS_ENABLED=false to rely on polling alone).",
                    101,
                )
            )
    host = urlsplit(url).hostname if url else None
    if host and ":" in host:
        host = f"[{host}]"  # an IPv6 address, written as ALLOWED_HOSTS writes it
    if host and not validate_host(host, settings.ALLOWED_HOSTS):
        problems.append(
            _problem(
                f"ALLOWED_HOSTS {settings.ALLOWED_HOSTS!r} does not contain {host!r}, the "
                "host of PUBLIC_BASE_URL: every webhook would be refused with HTTP 400.",
                f"Add {host} to ALLOWED_HOSTS (comma-separated).",
                102,
            )
        )
    return problems


@register(deploy=False)
def several_hosts(app_configs, **kwargs):
    """A production deployment runs several worker processes (often on several hosts): what
    they share must live in Redis, not in a process or a local folder."""
    if settings.DEBUG:
        return []
    problems = []
    if str(settings.CELERY_BROKER_URL).startswith("filesystem://"):
        problems.append(
            Error(
                "The Celery broker is a local folder (filesystem://): workers on other hosts "
                "never receive its tasks, and nothing is shared between containers.",
                hint="Set REDIS_URL (or CELERY_BROKER_URL) to the deployment's Redis, e.g. "
                "redis://redis:6379/0.",
                id="connector.E103",
            )
        )
    if not settings.REDIS_URL:
        problems.append(
            Error(
                "REDIS_URL is not set: each process would keep its own Brightpearl request "
                "budget (several workers overspend an account's 200 requests/minute) and its "
                "own cache.",
                hint="Set REDIS_URL to the Redis every web and worker process shares.",
                id="connector.E104",
            )
        )
    return problems


def minimum_visibility_timeout() -> int:
    """A task is unacknowledged from delivery (a countdown waits in the worker) until it ends
    (acks_late): the broker must not hand it to another worker before then."""
    return int(settings.CELERY_TASK_TIME_LIMIT) + BROKER_COUNTDOWN_MAX_SECONDS + 30


@register(deploy=False)
def visibility_timeout(app_configs, **kwargs):
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    timeout = options.get("visibility_timeout")
    if timeout is None or not str(settings.CELERY_BROKER_URL).startswith(("redis", "rediss")):
        return []
    needed = minimum_visibility_timeout()
    if timeout >= needed:
        return []
    return [
        _problem(
            f"The broker's visibility timeout ({timeout} s) is shorter than the hard task time "
            f"limit plus the longest broker countdown ({needed} s): Redis would hand a task "
            "that is still running, or still waiting for its countdown, to a second worker.",
            f"Set CELERY_VISIBILITY_TIMEOUT to at least {needed}, or lower CELERY_TASK_TIME_LIMIT.",
            105,
        )
    ]
