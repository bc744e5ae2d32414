"""Brightpearl reference data — quarantine locations, warehouse locations, the payment method
for a bank account and currency — cached per Brightpearl account with a TTL
(`REFERENCE_DATA_TTL_SECONDS`, default one hour) in Django's cache, shared by every process
when the cache is Redis.

It changes rarely, and reading it afresh in every run spent a quarter of a busy run's requests
(and part of a budget other apps of the merchant share). A miss is never cached: a payment
method that is not found is looked up again next time, so fixing it in Brightpearl takes effect
at once; `forget` drops an entry Brightpearl has just contradicted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache

_MISSING = object()


def _key(connection, kind: str, key: Any) -> str:
    return f"bp-ref:{connection.brightpearl_account_key}:{kind}:{key}"


def cached(connection, kind: str, key: Any, load: Callable[[], Any]) -> Any:
    name = _key(connection, kind, key)
    value = cache.get(name, _MISSING)
    if value is _MISSING:
        value = load()
        cache.set(name, value, settings.REFERENCE_DATA_TTL_SECONDS)
    return value


def forget(connection, kind: str, key: Any) -> None:
    cache.delete(_key(connection, kind, key))
