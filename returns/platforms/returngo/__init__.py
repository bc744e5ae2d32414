"""ReturnGO: client, adapter, status map, sandbox — and its registry entry."""

from ..registry import PlatformSpec
from .client import DAILY_CALL_LIMIT, RETURNGO_API_URL, WRITE_RESERVE
from .statuses import STATUSES

PLATFORM = PlatformSpec(
    kind="returngo",
    label="ReturnGO",
    statuses=STATUSES,
    adapter="returns.platforms.returngo.adapter:ReturnGOPlatform",
    public_api_url=RETURNGO_API_URL,
    # ReturnGO signs nothing (UNCONFIRMED): the secret in the URL is the authentication.
    daily_call_limit=DAILY_CALL_LIMIT,
    daily_write_reserve=WRITE_RESERVE,
    # ReturnGO's advice: webhooks, with a sparse poll as the safety net (hourly in its ETL
    # recipe). While its webhooks arrive the list poll runs hourly, and not at all once the
    # day's reads are down to the last 200 (kept for the RMAs the webhooks name).
    webhook_poll_minutes=60,
    daily_poll_reserve=200,
    rate_limit=(100, 1.0),  # 100 calls a second per key, besides the daily budget
    required_settings={
        "platform_api_key": "This platform needs an API key.",
        "platform_shop_name": "ReturnGO needs the shop name (x-shop-name).",
    },
    sandbox="returns.platforms.returngo.sandbox",
    # Moving the shipment to Received costs a call per return; a merchant near the daily
    # allowance can leave it to Done alone (the adapter's `mark_shipments_received` option).
    optional_settings=frozenset({"mark_shipments_received"}),
    # ReturnGO's documented shipment events: the connector learns goods-in from Brightpearl and
    # writes shipments from the copy it holds (re-read when ReturnGO refuses the move), so a
    # shipment event — ours when we move a shipment to Received, a carrier's tracking update —
    # would cost a `GET /rma/{id}` of the daily budget for nothing. The poll still sees them.
    news_free_events=frozenset(
        {"SHIPMENT_CREATED", "SHIPMENT_STATUS_UPDATED", "SHIPMENT_TRACKER_STATUS_UPDATED"}
    ),
)
