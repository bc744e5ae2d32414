"""Which connection a webhook URL names, kept in each web process for a few seconds (#11).

A delivery's URL names the connection and carries its secret. Reading the connection row (and
decrypting its secret) cost as much as storing the delivery, for every delivery of a burst, so
each process keeps what it read for `WEBHOOK_ROUTE_CACHE_SECONDS` (5 s; 0 turns it off):

* a URL whose secret does not match what is kept is read again (never answered from memory),
  so a new connection, or a row ID reused with another secret, is never refused because of it;
* saving or deleting a connection forgets it in the process that saved it at once, and in
  every other process within the TTL: disabling a connection, or rotating its webhook secret,
  takes effect for deliveries within 5 s.
"""

from __future__ import annotations

import hmac
import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from ..models import Connection

_lock = threading.Lock()
_kept: dict[tuple[int, tuple[str, ...] | None], tuple[float, Connection]] = {}


def secret_matches(connection: Connection, given: str) -> bool:
    expected = connection.webhook_secret or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


def connection_for(
    connection_id: int, secret: str, fields: tuple[str, ...] | None = None
) -> Connection | None:
    """The connection the URL names if its secret matches, else None. `fields`: the columns
    the caller reads (None: all); each encrypted column loaded is decrypted."""
    key, now = (connection_id, fields), time.monotonic()
    with _lock:
        kept = _kept.get(key)
    if kept is not None and kept[0] > now and secret_matches(kept[1], secret):
        return kept[1]
    rows = Connection.objects.filter(pk=connection_id)
    connection = (rows.only(*fields) if fields is not None else rows).first()
    if connection is None or not secret_matches(connection, secret):
        return None
    ttl = float(getattr(settings, "WEBHOOK_ROUTE_CACHE_SECONDS", 5))
    if ttl > 0:
        with _lock:
            _kept[key] = (now + ttl, connection)
    return connection


@receiver(post_save, sender=Connection, dispatch_uid="connector-webhook-routes-saved")
@receiver(post_delete, sender=Connection, dispatch_uid="connector-webhook-routes-deleted")
def forget(sender, instance: Connection, **kwargs) -> None:
    with _lock:
        for key in [k for k in _kept if k[0] == instance.pk]:
            del _kept[key]
