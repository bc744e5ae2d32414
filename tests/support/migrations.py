"""Data migrations run again inside a test: under xdist the tests that run real processes go
first (tests/support/xdist_worker.py), and a transactional test's flush removes the rows data
migrations made, so a test reading them makes them again first."""

from __future__ import annotations

import importlib

from django.apps import apps


def run_data_migration(module: str, times: int = 2) -> None:
    """Run `connector.migrations.<module>`'s `forwards` (twice by default: a test then also
    shows it is idempotent)."""
    migration = importlib.import_module(f"connector.migrations.{module}")
    for _ in range(times):
        migration.forwards(apps, None)
