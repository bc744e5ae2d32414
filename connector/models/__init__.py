"""Connector models: connections and their warehouse mappings, bindings, sync logs."""

from .backfill import BackfillJob
from .bindings import BindingState, CreditChange, RefundPayment, SalesCredit
from .budget import PlatformCallBudget
from .connection import AuthMode, Connection, Platform, WarehouseMapping
from .problems import AlertSettings, Problem
from .refund_settings import OutcomeMapping, RefundBankAccount, Treatment
from .synclog import SyncEvent, SyncRun
from .webhooks import WebhookEvent

__all__ = [
    "AlertSettings",
    "AuthMode",
    "BackfillJob",
    "BindingState",
    "Connection",
    "CreditChange",
    "OutcomeMapping",
    "Platform",
    "PlatformCallBudget",
    "RefundBankAccount",
    "Problem",
    "RefundPayment",
    "SalesCredit",
    "SyncEvent",
    "SyncRun",
    "Treatment",
    "WarehouseMapping",
    "WebhookEvent",
]
