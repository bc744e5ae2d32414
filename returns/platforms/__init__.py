"""Returns-platform adapters behind one interface, and the registry that picks one.

No Django here: adapters and sandboxes run anywhere. `get_platform("loop", api_key=...)`.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import (
    ChangeFeed,
    Destination,
    NeutralLine,
    NeutralRefund,
    NeutralRma,
    ReceiptLine,
    ReturnsPlatform,
    WebhookEvent,
)
from .errors import UnknownPlatform

# kind → "module:Class"; imported lazily so one broken adapter cannot break the others.
REGISTRY: dict[str, str] = {
    "loop": "returns.platforms.loop.adapter:LoopPlatform",
    "returngo": "returns.platforms.returngo.adapter:ReturnGOPlatform",
}


def get_platform(
    kind: str,
    *,
    api_key: str,
    shop_name: str = "",
    base_url: str = "",
    webhook_secret: str = "",
    **options: Any,
) -> ReturnsPlatform:
    """An adapter for `kind` with explicit credentials. Empty base_url = the public API."""
    try:
        target = REGISTRY[kind]
    except KeyError:
        raise UnknownPlatform(f"no returns-platform adapter for {kind!r}") from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(
        api_key=api_key,
        shop_name=shop_name,
        base_url=base_url,
        webhook_secret=webhook_secret,
        **options,
    )


__all__ = [
    "REGISTRY",
    "ChangeFeed",
    "Destination",
    "NeutralLine",
    "NeutralRefund",
    "NeutralRma",
    "ReceiptLine",
    "ReturnsPlatform",
    "UnknownPlatform",
    "WebhookEvent",
    "get_platform",
]
