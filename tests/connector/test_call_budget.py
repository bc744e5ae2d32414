"""ReturnGO's 2,000 calls a day are shared by every worker and every store of one API key."""

import pytest

from connector.services.call_budget import SharedDailyCallBudget, budget_key
from returns.platforms.errors import BudgetExhausted

pytestmark = pytest.mark.django_db


def test_budget_is_shared_across_instances_and_keeps_a_reserve_for_writes():
    key = budget_key("returngo", "key-1")
    first, second = (
        SharedDailyCallBudget(key, limit=5, write_reserve=2),
        SharedDailyCallBudget(key, limit=5, write_reserve=2),
    )
    first.spend()
    second.spend()
    first.spend()
    with pytest.raises(BudgetExhausted, match="for reads"):
        second.spend()  # 3 used: the last 2 are kept for process / comment writes
    first.spend(write=True)
    second.spend(write=True)
    with pytest.raises(BudgetExhausted):
        first.spend(write=True)
    assert first.remaining == 0 == second.remaining
    assert SharedDailyCallBudget(budget_key("returngo", "key-2"), limit=5).remaining == 5


def test_the_returngo_adapter_of_a_connection_spends_the_shared_budget(rg_world):
    from datetime import timedelta

    from django.utils import timezone

    from connector.services.platforms import adapter_for

    adapter = adapter_for(rg_world.connection)
    list(adapter.fetch_changed(timezone.now() - timedelta(days=1)))
    budget = adapter.client.budget
    assert isinstance(budget, SharedDailyCallBudget)
    assert budget.used >= 1
    assert adapter_for(rg_world.connection).client.budget.used == budget.used
