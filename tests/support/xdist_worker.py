"""Each pytest-xdist worker (`make test PYTEST_WORKERS="-n 2"`) gets Redis of its
own; loaded with `-p` (pyproject's addopts) so it runs before Django reads its settings.

pytest-django already gives each worker its own test database (test_<name>_gw0, …). Redis keys
are not namespaced by database, so two workers sharing a Redis db would share throttle buckets,
locks and cache entries keyed by the same connection id. Worker gwN uses db index base + N of
REDIS_URL (and of CELERY_BROKER_URL when set); without xdist nothing changes. Celery queues,
ports and files under tmp_path are already unique per test."""

from __future__ import annotations

import os
import re

import pytest

REDIS_DATABASES = 16  # Redis's default `databases`


def per_worker_url(url: str, worker: str) -> str:
    """`redis://host:port/B` for worker gwN → `redis://host:port/(B+N)`; other URLs unchanged."""
    if not url.startswith(("redis://", "rediss://")) or not worker.startswith("gw"):
        return url
    n = int(worker[2:])
    match = re.match(r"^(rediss?://[^/?#]*)(?:/(\d*))?(.*)$", url)
    base = int(match.group(2) or 0)
    if base + n >= REDIS_DATABASES:
        raise pytest.UsageError(
            f"xdist worker {worker} needs Redis db {base + n}; use a lower db in {url}"
        )
    return f"{match.group(1)}/{base + n}{match.group(3)}"


def _isolate_this_worker() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        if os.environ.get(name):
            os.environ[name] = per_worker_url(os.environ[name], worker)


_isolate_this_worker()


PROCESS_FIXTURES = {"celery_worker", "live_server"}


def pytest_collection_modifyitems(config, items):
    """Under xdist, the tests that run real processes (marked slow, or using a Celery worker or
    a live server) go first, so the two workers share them instead of one finishing alone with
    the longest. (Keeping them all on one worker with `--dist loadgroup` does not work with
    pytest 9 and xdist 3.8: xdist renames `item._nodeid`, which pytest 9 no longer reads.)"""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    items.sort(
        key=lambda item: (
            not (item.get_closest_marker("slow") or PROCESS_FIXTURES & set(item.fixturenames))
        )
    )
