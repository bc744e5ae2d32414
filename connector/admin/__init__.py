"""The connector's admin, one module per area (dj-stripe's `admin/` package style).

Actions are methods of the ModelAdmin or of a mixin it inherits — never attached afterwards:
`connections` (Connection + warehouse mappings; `intake` and `webhooks` provide its action
mixins), `logs` (sync runs, sync events, bindings), `webhooks` (the inbound event log),
`problems` (open problems), `timeline` (the RMA page as a timeline; replaces returns'
RMA admin with a subclass), `overview`/`site` (the admin index as the overview),
`thirdparty` (libraries' admins re-registered with declared permissions), `permissions` (the
role vocabulary every action and custom URL declares). Django's autodiscovery imports this
package; importing the modules registers their admins.
"""

from . import rma_links, thirdparty
from .backfill import BackfillJobAdmin
from .connections import ConnectionAdmin, WarehouseMappingInline
from .logs import RefundPaymentAdmin, SalesCreditAdmin, SyncEventAdmin, SyncRunAdmin
from .problems import ProblemAdmin
from .timeline import RmaAdmin
from .webhooks import WebhookEventAdmin

__all__ = [
    "BackfillJobAdmin",
    "ConnectionAdmin",
    "ProblemAdmin",
    "RefundPaymentAdmin",
    "RmaAdmin",
    "SalesCreditAdmin",
    "SyncEventAdmin",
    "SyncRunAdmin",
    "WarehouseMappingInline",
    "WebhookEventAdmin",
    "rma_links",
    "thirdparty",
]
