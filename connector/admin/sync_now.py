"""Staff's "Run sync now": one pending sync per connection however often it is clicked (the
coalescing of services/pending.py, as for intake POSTs), and a message that says which
connections got a new sync and which already had one waiting."""

from __future__ import annotations

from django.contrib import messages

from ..models import Connection, SyncRun
from ..tasks import request_syncs_now

NAMES_SHOWN = 10  # more than this: a count instead of the names


def queue_staff_syncs(request, connection_ids) -> None:
    queued, waiting = request_syncs_now(connection_ids, SyncRun.Trigger.ADMIN)
    names = dict(Connection.objects.filter(pk__in=[*queued, *waiting]).values_list("pk", "name"))
    if queued:
        messages.info(request, f"Sync queued for {_listed(queued, names)}.")
    if waiting:
        messages.info(
            request,
            f"A sync was already queued for {_listed(waiting, names)}: not queued again — "
            "the waiting one starts soon and takes in everything up to then.",
        )


def _listed(ids: list[int], names: dict[int, str]) -> str:
    if len(ids) > NAMES_SHOWN:
        return f"{len(ids)} connections"
    return ", ".join(names.get(pk, f"connection {pk}") for pk in ids)
