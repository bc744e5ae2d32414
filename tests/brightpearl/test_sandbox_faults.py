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


# --- the documented response shapes a chaos run needs (faults the control API switches on) ---
def sales_credits(account) -> list[dict]:
    return [o for o in account.control.state()["orders"] if o["orderTypeCode"] == "SC"]


def test_late_fault_commits_at_once_and_answers_after_the_callers_timeout(
    sandbox_account, seeded_sale
):
    sandbox_account.control.add_fault(
        "/order-service/sales-credit/?$", kind="late", method="POST", seconds=1.0
    )
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale), timeout=0.3)
    # Visible to a search while the caller is still waiting for the answer.
    assert len(sales_credits(sandbox_account)) == 1
    assert time.monotonic() - started < 1.0
    assert sandbox_account.control.stats()["fault:late"] == 1


def test_delay_fault_commits_only_after_the_callers_timeout(sandbox_account, seeded_sale):
    """The harsher shape: a search right after the timeout finds nothing, the write lands
    later (what an overloaded Brightpearl does with a queued request)."""
    sandbox_account.control.add_fault(
        "/order-service/sales-credit/?$", kind="delay", method="POST", seconds=0.8
    )
    with pytest.raises(requests.Timeout):
        sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale), timeout=0.2)
    assert sales_credits(sandbox_account) == []
    deadline = time.monotonic() + 5
    while not sales_credits(sandbox_account) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sales_credits(sandbox_account)) == 1


def test_private_app_credit_without_instance_id_has_no_duplicate_guard(
    sandbox_account, seeded_sale
):
    """Brightpearl's duplicate rule needs externalRef *and* installedIntegrationInstanceId:
    a private app (no instance) that re-posts after a lost answer makes a second credit."""
    body = credit_body(seeded_sale)
    body.pop("installedIntegrationInstanceId")
    first = sandbox_account.post("/order-service/sales-credit/", body).json()["response"]
    second = sandbox_account.post("/order-service/sales-credit/", body).json()["response"]
    assert first != second
    refs = [c["externalRef"] for c in sales_credits(sandbox_account)]
    assert refs == ["loop:return:10042", "loop:return:10042"]


@pytest.mark.parametrize("headers", [True, False])
def test_throttle_fault_answers_503_and_writes_nothing(sandbox_account, seeded_sale, headers):
    sandbox_account.control.add_fault(
        "/order-service/sales-credit/?$", kind="throttle", method="POST", headers=headers
    )
    answer = sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["code"] == "CMNC-503"
    assert ("brightpearl-next-throttle-period" in answer.headers) is headers
    assert ("brightpearl-requests-remaining" in answer.headers) is headers
    assert sales_credits(sandbox_account) == []


def test_throttle_without_headers_when_the_budget_is_spent(sandbox_account):
    sandbox_account.control.set_throttle(budget=2, window_seconds=30, headers=False)
    assert sandbox_account.get(CONFIG).headers["brightpearl-requests-remaining"] == "1"
    assert sandbox_account.get(CONFIG).status_code == 200
    throttled = sandbox_account.get(CONFIG)
    assert throttled.status_code == 503
    assert not [h for h in throttled.headers if h.lower().startswith("brightpearl-")]
    sandbox_account.control.set_throttle(budget=200, window_seconds=60)
    assert "brightpearl-next-throttle-period" in sandbox_account.get(CONFIG).headers


def test_probability_fault_hits_about_that_share_and_repeats_with_a_seed(sandbox_account):
    def run() -> list[int]:
        sandbox_account.control.clear_faults()
        sandbox_account.control.add_fault(
            "account-configuration", kind="error", status=502, times=None, probability=0.3, seed=7
        )
        return [sandbox_account.get(CONFIG).status_code for _ in range(100)]

    first = run()
    assert 15 <= first.count(502) <= 45
    assert set(first) == {200, 502}
    assert run() == first  # same seed, same sequence
    [fault] = sandbox_account.control.faults()
    assert fault["fired"] == first.count(502)


def test_stats_count_answers_and_faults_beyond_the_request_log(sandbox_account):
    sandbox_account.control.add_fault("account-configuration", kind="error", status=500, times=2)
    for _ in range(3):
        sandbox_account.get(CONFIG)
    stats = sandbox_account.control.stats()
    assert stats["status:500"] == 2
    assert stats["status:200"] == 1
    assert stats["fault:error"] == 2
    assert stats["requests"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"path": "x", "kind": "error", "probability": 1.5},
        {"path": "(", "kind": "error"},
        {"path": "x", "kind": "late", "probability": "often"},
    ],
)
def test_bad_fault_is_refused_and_nothing_is_added(sandbox_account, body):
    answer = requests.post(
        f"{sandbox_account.server_url}/_sandbox/{sandbox_account.code}/faults", json=body
    )
    assert answer.status_code == 400
    assert sandbox_account.control.faults() == []


def test_client_waits_out_a_headerless_503_and_succeeds(sandbox_account):
    """A 503 without the budget headers (as a proxy may send) is still 'not executed, wait':
    the client backs off by itself and the call succeeds."""
    from brightpearl import BrightpearlClient, PrivateAppAuth

    sandbox_account.control.add_fault(
        "account-configuration", kind="throttle", headers=False, times=1
    )
    client = BrightpearlClient(
        sandbox_account.code,
        base_url_template=sandbox_account.api_url_template,
        auth=PrivateAppAuth(sandbox_account.app_ref, sandbox_account.account_token),
        timeout=5.0,
        max_throttle_wait=3.0,
    )
    assert client.get_account_configuration()
    statuses = [r["status"] for r in sandbox_account.control.requests()]
    assert statuses == [503, 200]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [("id", "the id"), ("empty", {}), ("message", "a text")],
)
def test_duplicate_credit_answer_shapes(sandbox_account, seeded_sale, shape, expected):
    """Brightpearl answers a duplicate credit POST with 200 and changes nothing; what the body
    holds is not documented, so the sandbox can answer each plausible way."""
    first = sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    credit_id = first.json()["response"]
    sandbox_account.control.set_duplicate_credit_answer(shape)
    again = sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    assert again.status_code == 200
    if shape == "id":
        assert again.json() == {"response": credit_id}
    elif shape == "empty":
        assert again.json() == expected
    else:
        assert "Duplicate" in again.json()["response"]
    assert len(sales_credits(sandbox_account)) == 1


@pytest.mark.parametrize("shape", ["id", "empty", "message"])
def test_client_gets_the_existing_credit_id_whatever_the_duplicate_answer(
    sandbox_account, seeded_sale, shape
):
    from brightpearl import BrightpearlClient, PrivateAppAuth

    client = BrightpearlClient(
        sandbox_account.code,
        base_url_template=sandbox_account.api_url_template,
        auth=PrivateAppAuth(sandbox_account.app_ref, sandbox_account.account_token),
        timeout=5.0,
    )
    credit_id = client.create_sales_credit(credit_body(seeded_sale))
    sandbox_account.control.set_duplicate_credit_answer(shape)
    assert client.create_sales_credit(credit_body(seeded_sale)) == credit_id
    assert len(sales_credits(sandbox_account)) == 1


def test_bad_duplicate_answer_shape_is_refused(sandbox_account):
    from brightpearl.sandbox import SandboxControlError

    with pytest.raises(SandboxControlError) as caught:
        sandbox_account.control.set_duplicate_credit_answer("maybe")
    assert caught.value.status == 400
