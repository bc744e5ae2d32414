"""Fault injection (error, delay, drop = commit-then-drop) and the command line."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.brightpearl.test_sandbox_orders import credit_body

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "/integration-service/account-configuration"


def test_error_fault_is_returned_once(sandbox_account):
    sandbox_account.control.add_fault(r"^/integration-service/", kind="error", status=502, times=1)
    failed = sandbox_account.get(CONFIG)
    assert failed.status_code == 502
    assert failed.json()["errors"]
    assert failed.headers["ruid"]
    assert sandbox_account.get(CONFIG).status_code == 200


def test_error_fault_does_not_write(sandbox_account, seeded_sale):
    sandbox_account.control.add_fault("sales-credit", kind="error", method="POST", status=500)
    response = sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    assert response.status_code == 500
    assert not [o for o in sandbox_account.control.state()["orders"] if o["orderTypeCode"] == "SC"]


def test_fault_matches_method_and_path(sandbox_account):
    sandbox_account.control.add_fault(
        "account-configuration", kind="error", method="POST", times=None
    )
    assert sandbox_account.get(CONFIG).status_code == 200
    assert len(sandbox_account.control.faults()) == 1
    sandbox_account.control.clear_faults()
    assert sandbox_account.control.faults() == []


def test_delay_fault(sandbox_account):
    sandbox_account.control.add_fault("account-configuration", kind="delay", seconds=0.3)
    started = time.monotonic()
    assert sandbox_account.get(CONFIG).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.Timeout):
        sandbox_account.control.add_fault("account-configuration", kind="delay", seconds=0.5)
        sandbox_account.get(CONFIG, timeout=0.1)


def test_drop_fault_commits_then_drops(sandbox_account, seeded_sale):
    sandbox_account.control.add_fault("/order-service/sales-credit/?$", kind="drop", method="POST")
    with pytest.raises(requests.ConnectionError):
        sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    credits = [o for o in sandbox_account.control.state()["orders"] if o["orderTypeCode"] == "SC"]
    assert len(credits) == 1  # the write happened
    log = sandbox_account.control.requests()
    assert log[-1]["dropped"] is True
    # The client's safe retry: the duplicate rule returns the same credit.
    retry = sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    assert retry.json()["response"] == credits[0]["id"]


def test_cli_starts_and_seeds_demo(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    credentials = tmp_path / "credentials.json"
    command = [sys.executable, "-m", "brightpearl.sandbox", "--port", "0", "--seed-demo", "demo"]
    command += ["--account-token", "fixed-token", "--credentials-json", str(credentials)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        first_line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in first_line
        deadline = time.monotonic() + 10
        while not credentials.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        details = json.loads(credentials.read_text())
        assert details["accountToken"] == "fixed-token"
        headers = {
            "brightpearl-app-ref": details["appRef"],
            "brightpearl-account-token": "fixed-token",
        }
        response = requests.get(f"{details['apiUrl']}/order-service/order/100-102", headers=headers)
        assert response.status_code == 200
        assert len(response.json()["response"]) == 3
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_latency_setting(sandbox_account):
    sandbox_account.control.set_latency(0.2)
    started = time.monotonic()
    assert sandbox_account.get(CONFIG).status_code == 200
    assert time.monotonic() - started >= 0.2
    sandbox_account.control.set_latency(0)


def test_control_errors(sandbox_account):
    from brightpearl.sandbox import SandboxControlError

    with pytest.raises(SandboxControlError) as caught:
        sandbox_account.control.add_fault("x", kind="explode")
    assert caught.value.status == 400
    with pytest.raises(SandboxControlError) as caught:
        sandbox_account.control.receive(999999)
    assert caught.value.status == 404
    with pytest.raises(SandboxControlError) as caught:
        sandbox_account.control.create_account(sandbox_account.code)
    assert caught.value.status == 409
