"""Issue #9's chaos proof at CI size: `bench/chaos.py` with 40 returns, every fault kind, a
SIGKILLed worker — real web and Celery worker processes, PostgreSQL, Redis, HTTP sandboxes.

The full-size figures (1,000 returns) are in docs/reliability.md.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
COUNTS = (
    "duplicate credits",
    "duplicate payments",
    "lost or stuck returns",
    "credits off by a cent",
)

pytestmark = pytest.mark.slow


def bench_database_url() -> str:
    """A database of the bench's own, next to this run's test database (recreated by it)."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    name = f"{db['NAME']}_chaos"
    if not name.startswith("test_"):
        name = f"test_{name}"
    return f"postgres://{user}{password}@{host}:{port}/{name}"


def test_chaos_at_ci_size_ends_with_zero_on_every_count(postgres, redis_url):
    command = [sys.executable, str(ROOT / "bench" / "chaos.py")]
    command += ["--returns", "40", "--arrival-rate", "4", "--sync-every", "2", "--kills", "1"]
    # More lost and late writes than the full run, so a few of each happen in 40 returns.
    command += ["--late-rate", "0.2", "--late-seconds", "8", "--drop-rate", "0.1"]
    command += ["--throttle-rate", "0.03"]
    command += ["--budget", "40", "--window", "10", "--storm-seconds", "10"]
    command += ["--settle-timeout", "90", "--wakeup-returns", "3", "--wakeup-timeout", "45"]
    command += ["--seed", "9"]
    command += ["--database-url", bench_database_url(), "--redis-url", redis_url]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=360, check=False
    )
    output = result.stdout + result.stderr
    found = {
        name: int(m.group(1))
        for name in COUNTS
        if (m := re.search(rf"^{name}: (\d+)$", result.stdout, re.MULTILINE))
    }
    assert list(found) == list(COUNTS), output[-4000:]
    # The counts are the script's last lines, and its exit status agrees with them.
    assert result.stdout.strip().splitlines()[-4:] == [f"{n}: {found[n]}" for n in COUNTS]
    assert found == dict.fromkeys(COUNTS, 0), output[-4000:]
    assert result.returncode == 0, output[-4000:]
    # The faults really happened: 5xx, lost and late writes, 503s, a kill.
    assert re.search(r"'fault:error': [1-9]", output), output[-4000:]
    assert re.search(r"'status:503': [1-9]", output), output[-4000:]
    assert "SIGKILL" in output
