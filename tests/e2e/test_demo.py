"""`make demo` on a bare laptop: SQLite, a filesystem broker, no Redis — the story plays out."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_demo_runs_the_whole_story_without_any_service(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env["CONNECTOR_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--exit-after",
            "90",
            "--exit-when-done",
            "--port",
            str(free_port()),
            "--brightpearl-port",
            str(free_port()),
            "--loop-port",
            str(free_port()),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    assert "user: admin   password: " in out
    assert "[credit succeeded] RMA" in out
    assert "[credit flagged]" in out and "MUG-WHITE is not on original order" in out
    assert "[receipt succeeded via webhook]" in out  # Brightpearl webhook → worker
    assert "[process succeeded via webhook]" in out
    assert "[refund succeeded]" in out
    assert (tmp_path / "db.sqlite3").exists()
