"""The scheduled task runs in a real Celery worker on Redis and records a sync run."""

import pytest

from connector.models import SyncRun
from connector.tasks import sync_connection
from tests.conftest import wait_until

from .factories import ConnectionFactory


@pytest.mark.slow
def test_real_worker_runs_the_sync_task_and_records_the_run(celery_worker_process):
    connection = ConnectionFactory()
    sync_connection.delay(connection.pk, trigger=SyncRun.Trigger.ADMIN)
    run = wait_until(lambda: SyncRun.objects.filter(connection=connection).first())
    assert run.trigger == SyncRun.Trigger.ADMIN
    assert run.finished_at is not None
