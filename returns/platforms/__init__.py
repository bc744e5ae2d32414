"""Returns-platform adapters behind one interface; `registry` lists the platforms.

No Django here: adapters and sandboxes run anywhere. `get_platform("loop", api_key=...)`.
"""

from __future__ import annotations

from typing import Any

from . import registry
from .base import (
    ChangeFeed,
    Destination,
    NeutralLine,
    NeutralRefund,
    NeutralRma,
    ReceiptLine,
    ReturnsPlatform,
    WebhookHint,
)
from .errors import UnknownPlatform


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
    # Adapters are imported on first use, so one broken adapter cannot break the others.
    cls = registry.get(kind).adapter_class()
    return cls(
        api_key=api_key,
        shop_name=shop_name,
        base_url=base_url,
        webhook_secret=webhook_secret,
        **options,
    )


__all__ = [
    "ChangeFeed",
    "Destination",
    "NeutralLine",
    "NeutralRefund",
    "NeutralRma",
    "ReceiptLine",
    "ReturnsPlatform",
    "UnknownPlatform",
    "WebhookHint",
    "get_platform",
    "registry",
]
