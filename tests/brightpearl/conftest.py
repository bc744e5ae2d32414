"""Fixtures that give each Brightpearl test a seeded sale.

The `sandbox`, `sandbox_account` and `webhook_receiver` fixtures live in tests/conftest.py (every
test package uses them), what they build in tests/support/; keep their names and fields stable
(see docs/contract-brightpearl.md and docs/sandbox-brightpearl.md).
"""

from __future__ import annotations

import pytest

from tests.support.brightpearl_sandbox import SeededSale, seed_sale


@pytest.fixture
def seeded_sale(sandbox_account) -> SeededSale:
    return seed_sale(sandbox_account)
