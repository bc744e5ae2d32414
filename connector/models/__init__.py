"""Connector models: connections and their warehouse mappings, sync logs."""

from .connection import AuthMode, Connection, Platform, WarehouseMapping
from .synclog import SyncRun

__all__ = ["AuthMode", "Connection", "Platform", "SyncRun", "WarehouseMapping"]
