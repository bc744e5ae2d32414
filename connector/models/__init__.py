"""Connector models: connections and their warehouse mappings, bindings, sync logs."""

from .bindings import BindingState, CreditChange, RefundPayment, SalesCredit
from .budget import PlatformCallBudget
from .connection import AuthMode, Connection, Platform, WarehouseMapping
from .synclog import SyncEvent, SyncRun
from .webhooks import WebhookEvent

__all__ = [
    "AuthMode",
    "BindingState",
    "Connection",
    "CreditChange",
    "Platform",
    "PlatformCallBudget",
    "RefundPayment",
    "SalesCredit",
    "SyncEvent",
    "SyncRun",
    "WarehouseMapping",
    "WebhookEvent",
]
