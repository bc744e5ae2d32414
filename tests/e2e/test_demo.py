"""`make demo` on a bare laptop: SQLite, a filesystem broker, no Redis — the story plays out,
in plain words, with no warning the demo causes itself; a busy port stops it before anything
starts; the other commands reach the demo's sandboxes through var/demo.env."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_env(tmp_path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "PUBLIC_BASE_URL")
    }
    env["CONNECTOR_VAR_DIR"] = str(tmp_path)
    return env


def demo_args(*extra) -> list[str]:
    return [
        sys.executable,
        "manage.py",
        "demo",
        "--port",
        str(free_port()),
        "--brightpearl-port",
        str(free_port()),
        "--loop-port",
        str(free_port()),
        *extra,
    ]


@pytest.mark.slow
def test_demo_runs_the_whole_story_without_any_service(tmp_path):
    result = subprocess.run(
        demo_args("--exit-after", "90", "--exit-when-done"),
        cwd=ROOT,
        env=bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    assert "user: admin   password: " in out
    assert re.search(r"Sales credit \d+ created in Brightpearl for return \S+", out)
    assert "No sales credit for return" in out and "MUG-WHITE is not on original order" in out
    assert re.search(r"Brightpearl received the goods of return \S+ \(told by webhook\)", out)
    assert re.search(r"Return \S+ processed on Loop \(told by webhook\)", out)
    assert "Loop's refund of return" in out
    assert re.search(r"Sales credit \d+ cancelled: return \S+ ended on Loop", out)
    assert re.search(r"Sales credit \d+ adjusted to the edited return \S+", out)
    assert "the customer keeps every item" in out
    assert "Store credit" in out and "no payment from the bank" in out  # a non-bank outcome
    # Plain words: no "[flag flagged]"-style log jargon.
    assert not re.search(r"\[\w+ \w+( via webhook)?\]", out), out
    assert (tmp_path / "db.sqlite3").exists()
    # The demo causes no warning of its own: no system check, no kombu hostname warning.
    logs = "".join(p.read_text() for p in (tmp_path / "demo-logs").glob("*.log"))
    assert "No hostname was supplied" not in logs + result.stderr
    assert "connector.W" not in logs + result.stderr + out
    assert "System check identified some issues" not in logs + result.stderr
    assert "WARNING" not in logs + result.stderr, "a warning the demo caused itself"


@pytest.mark.parametrize("option", ["--port", "--brightpearl-port", "--loop-port"])
def test_a_busy_port_stops_the_demo_before_anything_starts_and_a_free_one_is_named(
    tmp_path, option
):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        args = demo_args()
        args[args.index(option) + 1] = str(taken)
        result = subprocess.run(
            args, cwd=ROOT, env=bare_env(tmp_path), capture_output=True, text=True, timeout=60
        )
    assert result.returncode != 0
    assert f"port {taken} ({option}) is already in use" in result.stderr
    suggested = re.search(rf"{option} (\d+)", result.stderr.split("Free ports now:")[1])
    assert suggested and int(suggested.group(1)) != taken
    assert "Traceback" not in result.stderr
    assert "password" not in result.stdout  # no banner for someone else's server
    assert not (tmp_path / "db.sqlite3").exists()  # nothing started, nothing migrated


@pytest.mark.slow
def test_other_commands_reach_the_running_demo_through_its_env_file(tmp_path):
    env = bare_env(tmp_path)
    out_path = tmp_path / "demo.out"
    with open(out_path, "w") as out:
        demo = subprocess.Popen(
            demo_args("--exit-after", "120"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "Subscribed to Brightpearl webhooks" not in out_path.read_text():
            assert demo.poll() is None, out_path.read_text()[-3000:]
            assert time.monotonic() < deadline, out_path.read_text()[-3000:]
            time.sleep(0.3)
        banner = out_path.read_text()
        env_file = tmp_path / "demo.env"
        assert f". {env_file}" in banner or ". var/demo.env" in banner
        # What the banner says to do: source the file, then run a command. Nothing else set.
        shell = (
            f'set -a; . "{env_file}"; set +a; '
            f'exec "{sys.executable}" manage.py connector_check "Demo store (Loop)"'
        )
        plain = {k: v for k, v in env.items() if k != "CONNECTOR_VAR_DIR"}
        check = subprocess.run(
            ["bash", "-c", shell],
            cwd=ROOT,
            env=plain,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "connection 'Demo store (Loop)' is ready" in check.stdout
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
