"""Build a Brightpearl client for a connection.

The throttle budget is per Brightpearl account and shared by every process: in Redis when
REDIS_URL is set (production, CI), in memory otherwise (the laptop demo runs one worker). An OAuth
token refresh is locked per connection across hosts (a database row lock).

Each client spends from one of two lanes (issue #11, brightpearl/throttle.py): *bulk* by default
(syncs, backlogs, backfills: all but BRIGHTPEARL_RESERVED_FOR_INBOUND requests of the rolling
minute, paced evenly), or *interactive* inside `interactive_lane()` — inbound event processing
and every admin view (connector/admin_site.py) — which may use the whole budget, so a webhook or
a staff action never waits for a large sync's minute to turn over.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brightpearl import (
    BrightpearlClient,
    Lane,
    MemoryThrottleStore,
    OAuthAuth,
    PrivateAppAuth,
    RedisThrottleStore,
)
from brightpearl.throttle import BULK, INTERACTIVE

from ..models import AuthMode, Connection
from ..observability import brightpearl_session

# How long a client built now may block waiting for its account's budget (None: as long as
# it takes). Celery tasks set it (see `never_sleep_for_budget`) so a worker slot is never
# spent sleeping: a longer wait raises BudgetSpent and the task re-queues itself.
_max_block: ContextVar[float | None] = ContextVar("brightpearl_max_block", default=None)


@contextmanager
def never_sleep_for_budget(seconds: float | None = None) -> Iterator[None]:
    """Within this block, clients wait at most ``seconds`` (BRIGHTPEARL_MAX_BLOCK_SECONDS) for
    rate budget; beyond that they raise :class:`brightpearl.BudgetSpent`."""
    token = _max_block.set(settings.BRIGHTPEARL_MAX_BLOCK_SECONDS if seconds is None else seconds)
    try:
        yield
    finally:
        _max_block.reset(token)


# Which lane clients built now spend from (see the module docstring). Separate from `_max_block`:
# how long to wait and whose budget share to use are independent choices.
_lane: ContextVar[str] = ContextVar("brightpearl_throttle_lane", default=BULK)


@contextmanager
def interactive_lane() -> Iterator[None]:
    """Within this block, clients are built in the interactive lane: someone is waiting
    (a webhook's change, a staff action), so the budget's reserve is theirs too."""
    token = _lane.set(INTERACTIVE)
    try:
        yield
    finally:
        _lane.reset(token)


@cache
def _throttle_store():
    if settings.REDIS_URL:
        return RedisThrottleStore(settings.REDIS_URL)
    return MemoryThrottleStore()


def _auth_for(connection: Connection):
    if connection.brightpearl_auth_mode == AuthMode.OAUTH:
        return OAuthAuth(
            app_ref=connection.brightpearl_app_ref,
            dev_ref=connection.brightpearl_dev_ref,
            # No access token yet: the first call is refused and the refresh token is used.
            access_token=connection.brightpearl_access_token or "none-yet",
            refresh_token=connection.brightpearl_refresh_token or None,
            client_secret=connection.brightpearl_client_secret or None,
            refresh_lock=_refresh_lock(connection.pk),
            load_tokens=_stored_tokens(connection.pk),
        )
    if connection.brightpearl_auth_mode == AuthMode.PRIVATE_STAFF_TOKEN:
        return PrivateAppAuth(
            app_ref=connection.brightpearl_app_ref,
            staff_token=connection.brightpearl_staff_token or "",
        )
    return PrivateAppAuth(
        app_ref=connection.brightpearl_app_ref,
        account_token=connection.brightpearl_account_token or "",
    )


def _refresh_lock(connection_id: int):
    """One OAuth refresh at a time per connection across every process and host: a row lock on
    the connection (PostgreSQL `SELECT … FOR UPDATE`), held while the token endpoint is asked
    and the rotated pair is stored. Brightpearl's refresh tokens rotate: two hosts refreshing
    at once would leave one of them, and the stored pair, with a refresh token already used."""

    @contextmanager
    def lock() -> Iterator[None]:
        with transaction.atomic():
            list(Connection.objects.select_for_update().filter(pk=connection_id).values("pk"))
            yield

    return lock


def _stored_tokens(connection_id: int):
    """The tokens as stored now: another host may have refreshed while we waited for the lock."""

    def load() -> dict | None:
        connection = Connection.objects.filter(pk=connection_id).first()
        if connection is None:
            return None
        return {
            "access_token": connection.brightpearl_access_token or "",
            "refresh_token": connection.brightpearl_refresh_token or "",
        }

    return load


def _persist_tokens(connection_id: int):
    """Store a rotated OAuth token pair at once: the old refresh token no longer works."""

    def save(tokens: dict) -> None:
        connection = Connection.objects.get(pk=connection_id)
        connection.brightpearl_access_token = tokens.get("access_token") or ""
        connection.brightpearl_refresh_token = tokens.get("refresh_token") or ""
        if tokens.get("expires_in"):
            connection.brightpearl_token_expires_at = timezone.now() + timedelta(
                seconds=int(tokens["expires_in"])
            )
        connection.save(
            update_fields=[
                "brightpearl_access_token",
                "brightpearl_refresh_token",
                "brightpearl_token_expires_at",
                "updated_at",
            ]
        )

    return save


def client_for(connection: Connection, *, timeout: float | None = None) -> BrightpearlClient:
    return BrightpearlClient(
        account=connection.brightpearl_account,
        datacentre=connection.brightpearl_datacentre,
        auth=_auth_for(connection),
        base_url_template=settings.BRIGHTPEARL_API_URL,
        token_url=settings.BRIGHTPEARL_OAUTH_TOKEN_URL,
        timeout=timeout or settings.BRIGHTPEARL_TIMEOUT,
        throttle_store=_throttle_store(),
        budget=settings.BRIGHTPEARL_REQUESTS_PER_MINUTE,
        max_throttle_block=_max_block.get(),
        throttle_lane=Lane(
            _lane.get(),
            reserve=settings.BRIGHTPEARL_RESERVED_FOR_INBOUND,
            burst=settings.BRIGHTPEARL_BULK_BURST,
        ),
        on_token_refresh=_persist_tokens(connection.pk),
        session=brightpearl_session(),  # counts requests/503s for metrics, ruid for logs
    )
