"""The one list of returns platforms. Everything platform-specific the rest of the project
needs — the choices stored on connections, RMAs and inbound events, the webhook routes, the
status map, how webhooks are verified, a daily call budget, the public API URL, the adapter —
is read from a `PlatformSpec` here, never spelled out elsewhere.

Each platform is one package, `returns/platforms/<name>/`, whose `__init__` defines
`PLATFORM = PlatformSpec(...)`; adding a platform is that package plus one line in `PACKAGES`
(docs/adding-a-platform.md). Tests register a fake platform with `register()` and remove it
with `unregister()`. No Django here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import UnknownPlatform

# One line per platform: the package under returns/platforms/ that defines `PLATFORM`.
PACKAGES: tuple[str, ...] = (
    "loop",
    "returngo",
    "generic",
)


@dataclass(frozen=True)
class PlatformSpec:
    """What the connector needs to know about one returns platform."""

    kind: str  # stored in the database (connections, RMAs, inbound events): never rename
    label: str  # shown to staff
    # Lower-cased platform status → neutral status (returns.lifecycle); unknown → None.
    statuses: Mapping[str, str] = field(default_factory=dict)
    # "module:Class" of the ReturnsPlatform adapter; empty = the platform pushes to our intake
    # API and has nothing to poll, write back to, or receive webhooks from.
    adapter: str = ""
    public_api_url: str = ""  # where the adapter talks when a connection names no URL
    # Header carrying the webhook signature (the adapter's verify_webhook checks it); empty =
    # the platform signs nothing and the secret in the URL is the authentication.
    webhook_signature_header: str = ""
    # Calls a day per API key (None = no daily cap), and how many of them polling leaves to
    # writes (process, flag): the connector keeps one shared budget per key.
    daily_call_limit: int | None = None
    daily_write_reserve: int = 0
    # The scheduled list poll is only a safety net while the platform's webhooks are arriving:
    # then it runs at most once per this many minutes (None = on every scheduled run), and —
    # for a platform with a daily call limit — never while the day's reads left are down to
    # `daily_poll_reserve`: those are kept for the returns the webhooks name.
    webhook_poll_minutes: int | None = None
    daily_poll_reserve: int = 0
    # The documented request limit (calls, seconds): the client paces below it and waits 429s
    # out (None = not documented; 429s are retried a few times with backoff).
    rate_limit: tuple[int, float] | None = None
    # Connection settings this platform cannot work without: field name → what to tell staff
    # (checked when a connection is validated; the admin shows these fields for the platform).
    required_settings: Mapping[str, str] = field(default_factory=dict)
    sandbox: str = ""  # module of the platform's sandbox server (demo, tests, benchmarks)
    # Webhook event names that tell the connector nothing it acts on: such an event is stored
    # and marked ignored without re-fetching the return (a re-fetch spends a call of a budget).
    news_free_events: frozenset[str] = frozenset()
    # Connection settings this platform reads when set (optional): the admin shows them for it
    # and `connector.services.platforms.adapter_for` passes them to its adapter.
    optional_settings: frozenset[str] = frozenset()

    def uses(self, setting: str) -> bool:
        """Whether a connection to this platform uses the connection setting `setting` (the
        admin shows a platform's own fields only): what it requires, the webhook signing secret
        where it signs, the API address where it is polled."""
        if setting in self.required_settings or setting in self.optional_settings:
            return True
        if setting == "platform_webhook_secret":
            return self.signs_webhooks
        if setting == "platform_api_url":
            return self.has_adapter
        return False

    @property
    def has_adapter(self) -> bool:
        return bool(self.adapter)

    @property
    def receives_webhooks(self) -> bool:
        return self.has_adapter

    @property
    def signs_webhooks(self) -> bool:
        return bool(self.webhook_signature_header)

    def adapter_class(self) -> type:
        if not self.adapter:
            raise UnknownPlatform(f"no returns-platform adapter for {self.kind!r}")
        module_name, class_name = self.adapter.split(":")
        return getattr(importlib.import_module(module_name), class_name)


_specs: dict[str, PlatformSpec] = {}
_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for name in PACKAGES:
        spec = importlib.import_module(f"{__package__}.{name}").PLATFORM
        _specs.setdefault(spec.kind, spec)
    _loaded = True


def register(spec: PlatformSpec) -> PlatformSpec:
    """Add a platform (a test's fake one; real ones are listed in PACKAGES)."""
    _load()
    if spec.kind in _specs and _specs[spec.kind] != spec:
        raise ValueError(f"platform {spec.kind!r} is already registered")
    _specs[spec.kind] = spec
    return spec


def unregister(kind: str) -> None:
    _load()
    _specs.pop(kind, None)


def platforms() -> list[PlatformSpec]:
    """Every registered platform, in registration order."""
    _load()
    return list(_specs.values())


def get(kind: str) -> PlatformSpec:
    _load()
    try:
        return _specs[kind]
    except KeyError:
        raise UnknownPlatform(f"unknown returns platform {kind!r}") from None


def find(kind: str) -> PlatformSpec | None:
    _load()
    return _specs.get(kind)


def platforms_using(setting: str) -> list[str]:
    """The kinds of the platforms that use a connection setting (PlatformSpec.uses)."""
    return [spec.kind for spec in platforms() if spec.uses(setting)]


def choices() -> list[tuple[str, str]]:
    """(kind, label) of every platform: the choices of the `platform` fields (a callable, so a
    platform registered later is a valid choice without a migration)."""
    return [(spec.kind, spec.label) for spec in platforms()]


def webhook_platforms() -> list[PlatformSpec]:
    """The platforms whose webhooks we receive at /webhooks/<kind>/<connection>/<secret>/."""
    return [spec for spec in platforms() if spec.receives_webhooks]


def adapter_kinds() -> list[str]:
    return [spec.kind for spec in platforms() if spec.has_adapter]
