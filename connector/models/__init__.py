"""Connector models: connections and their warehouse mappings, bindings, sync logs."""

from .bindings import BindingState, RefundPayment, SalesCredit
from .budget import PlatformCallBudget
from .connection import AuthMode, Connection, Platform, WarehouseMapping
from .problems import AlertSettings, Problem
from .synclog import SyncEvent, SyncRun
from .webhooks import WebhookEvent

__all__ = [
    "AlertSettings",
    "AuthMode",
    "BindingState",
    "Connection",
    "Platform",
    "PlatformCallBudget",
    "Problem",
    "RefundPayment",
    "SalesCredit",
    "SyncEvent",
    "SyncRun",
    "WarehouseMapping",
    "WebhookEvent",
]
