"""Connector models: connections and their warehouse mappings, bindings, sync logs."""

from .backfill import BackfillJob
from .bindings import BindingState, RefundPayment, SalesCredit
from .budget import PlatformCallBudget
from .connection import AuthMode, Connection, Platform, WarehouseMapping
from .synclog import SyncEvent, SyncRun
from .webhooks import WebhookEvent

__all__ = [
    "AuthMode",
    "BackfillJob",
    "BindingState",
    "Connection",
    "Platform",
    "PlatformCallBudget",
    "RefundPayment",
    "SalesCredit",
    "SyncEvent",
    "SyncRun",
    "WarehouseMapping",
    "WebhookEvent",
]
