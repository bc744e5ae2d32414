"""Queues by kind: each kind of work lands on its own queue, so a worker serving webhooks never
waits behind syncs (issue #12)."""

import uuid

import pytest

from connector.queues import BULK, HOUSEKEEPING, INBOUND, SYNC, all_queues, queue_name, route_task


@pytest.mark.parametrize(
    ("name", "kwargs", "kind"),
    [
        ("connector.tasks.process_inbound_event", {}, INBOUND),
        ("connector.tasks.drain_inbound_events", {}, INBOUND),
        ("connector.tasks.process_webhook_event", {}, INBOUND),
        ("connector.tasks.sync_connection", {"trigger": "webhook"}, INBOUND),
        ("connector.tasks.sync_connection", {"trigger": "intake", "pending": True}, INBOUND),
        ("connector.tasks.sync_connection", {"trigger": "beat"}, SYNC),
        ("connector.tasks.sync_connection", {"trigger": "admin"}, SYNC),
        ("connector.tasks.sync_connection", {}, SYNC),
        ("connector.tasks.sync_connection", {"trigger": "beat", "follow_up": True}, BULK),
        ("connector.tasks.prune_sync_logs", {}, HOUSEKEEPING),
        ("connector.tasks.redispatch_inbound_events", {}, HOUSEKEEPING),
    ],
)
def test_every_task_is_routed_by_kind(name, kwargs, kind):
    assert route_task(name, (1,), kwargs, {}) == {"queue": queue_name(kind)}


def test_unknown_tasks_stay_on_the_default_queue():
    assert route_task("celery.backend_cleanup", (), {}, {}) is None


def test_queue_names_follow_the_default_queue():
    assert all_queues("celery") == [
        "celery",
        "celery.inbound",
        "celery.sync",
        "celery.bulk",
        "celery.housekeeping",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_not_queued_behind_syncs(redis_url):
    """Published through the real broker: 20 scheduled syncs wait on the sync queue while the
    webhook event is alone on the inbound queue, first in line for an inbound worker."""
    import redis

    from config.celery_app import app
    from connector.tasks import process_inbound_event, sync_connection

    base = f"route-{uuid.uuid4().hex[:8]}"
    old = app.conf.task_default_queue
    app.conf.task_default_queue = base
    client = redis.Redis.from_url(redis_url)
    try:
        for pk in range(20):
            sync_connection.delay(pk, trigger="beat")
        process_inbound_event.delay(1)
        assert client.llen(queue_name(SYNC, base)) == 20
        assert client.llen(queue_name(INBOUND, base)) == 1
        assert client.llen(base) == 0
    finally:
        app.conf.task_default_queue = old
        client.delete(*all_queues(base))
