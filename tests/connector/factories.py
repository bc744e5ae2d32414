"""The connector's factories live in tests/support/factories.py (one `ConnectionFactory`)."""

from tests.support.factories import ConnectionFactory, WarehouseMappingFactory

__all__ = ["ConnectionFactory", "WarehouseMappingFactory"]
