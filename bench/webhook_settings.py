"""Settings of the web process `bench/webhook_throughput.py` starts: the connector's own, with
a URLconf that adds the one-INSERT baseline view (`bench/webhook_urls.py`) beside the real
routes. Benchmark only; never in production URLs."""

import os

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.webhook_urls"
# The benchmark's sender is on loopback; no Brightpearl needs to reach this process.
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "connector.E101"]  # noqa: F405
# --conn-max-age: persistent database connections (production's default is 0: one per request).
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))  # noqa: F405
