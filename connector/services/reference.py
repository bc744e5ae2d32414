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

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from brightpearl import BrightpearlError
from returns.platforms.errors import PlatformError

from ..secrets import redact
from .brightpearl import client_for
from .platforms import adapter_for

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


# --- Lists staff pick from in the connection form ---------------------------------------------
@dataclass(frozen=True)
class Choices:
    """Named choices for one setting, or why there are none (the field then takes a typed ID)."""

    options: tuple[tuple[str, str], ...] = ()
    problem: str = ""

    @property
    def loaded(self) -> bool:
        return not self.problem

    def name_of(self, value: Any) -> str | None:
        return dict(self.options).get(str(value))


def _named(value: Any, name: Any) -> tuple[str, str]:
    return str(value), f"{name or '(no name)'} ({value})"


def _statuses(client) -> list[tuple[str, str]]:
    return [
        _named(s["statusId"], s.get("name"))
        for s in client.get_order_statuses()
        if s.get("orderTypeCode") == "SC"
    ]


def _channels(client) -> list[tuple[str, str]]:
    return [_named(c["id"], c.get("name")) for c in client.get_channels()]


def _warehouses(client) -> list[tuple[str, str]]:
    return [_named(w["id"], w.get("name")) for w in client.get_warehouses()]


def _bank_accounts(client) -> list[tuple[str, str]]:
    return [_named(n["code"], n.get("name")) for n in client.search_nominal_codes(bank="true")]


def _payment_methods(client) -> list[tuple[str, str]]:
    return [
        _named(str(m["code"]).upper(), m.get("name"))
        for m in client.get_payment_methods()
        if m.get("code") and m.get("isActive") is not False
    ]


BRIGHTPEARL_LISTS: dict[str, Callable] = {
    "credit_statuses": _statuses,
    "channels": _channels,
    "warehouses": _warehouses,
    "bank_accounts": _bank_accounts,
    "payment_methods": _payment_methods,
}
LIST_TIMEOUT_SECONDS = 5


def brightpearl_choices(connection, kind: str) -> Choices:
    """Brightpearl's statuses, channels, warehouses, bank accounts or payment methods by name,
    cached per account; a failure (unreachable, refused credentials) is not cached and says
    why."""
    if connection is None or not connection.pk:
        return Choices(problem="the list appears once the connection is saved")

    def load():
        return tuple(BRIGHTPEARL_LISTS[kind](client_for(connection, timeout=LIST_TIMEOUT_SECONDS)))

    try:
        return Choices(cached(connection, "list", kind, load))
    except (BrightpearlError, ValueError) as exc:
        return Choices(problem=f"Brightpearl could not be asked ({_short(exc, connection)})")


def destination_choices(connection) -> Choices:
    """The returns platform's destinations, cached per platform account like Brightpearl's
    lists ("Check connection" and every save drop them: `forget_lists`)."""
    if connection is None or not connection.pk:
        return Choices(problem="the list appears once the connection is saved")
    name = _destinations_key(connection)
    value = cache.get(name, _MISSING)
    if value is _MISSING:
        try:
            # A page waits for this: one try, a short timeout, no backoff.
            platform = adapter_for(connection, timeout=LIST_TIMEOUT_SECONDS, max_retries=0)
            if platform is None:
                return Choices(problem="this platform has no destinations to list")
            value = tuple(_named(d.id, d.name) for d in platform.list_destinations())
        except (PlatformError, OSError, ValueError) as exc:
            return Choices(problem=f"the platform could not be asked ({_short(exc, connection)})")
        cache.set(name, value, settings.REFERENCE_DATA_TTL_SECONDS)
    if not value:
        return Choices(problem="the platform lists no destinations")
    return Choices(value)


def forget_lists(connection) -> None:
    """Drop the cached lists of a connection (after its settings were saved or checked), so
    the next form shows what Brightpearl and the platform hold now."""
    cache.delete_many(
        [_key(connection, "list", kind) for kind in BRIGHTPEARL_LISTS]
        + [_destinations_key(connection)]
    )


def _destinations_key(connection) -> str:
    """Per platform account (platform, address, key), as Brightpearl's lists are per account."""
    account = f"{connection.platform}|{connection.platform_api_url}|{connection.platform_api_key}"
    return f"platform-list:{hashlib.sha256(account.encode()).hexdigest()[:32]}:destinations"


def _short(exc: BaseException, connection) -> str:
    text = redact(str(exc), connection)
    return text if len(text) <= 160 else text[:157] + "…"
