"""Sandbox basics over real HTTP: envelopes, headers, auth modes, OAuth, throttling, ID sets."""

import time

import requests

from brightpearl.sandbox import SandboxControl
from brightpearl.sandbox.idsets import IdSetError, format_id_set, parse_id_set

CONFIG = "/integration-service/account-configuration"


def test_success_envelope_and_headers(sandbox_account):
    response = sandbox_account.get(CONFIG)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"response"}
    assert body["response"]["configuration"]["newSalesCreditStatusId"] == "10"
    assert response.headers["brightpearl-requests-remaining"] == "199"
    assert 0 < int(response.headers["brightpearl-next-throttle-period"]) <= 60000
    assert response.headers["ruid"]
    assert response.headers["Content-Type"].startswith("application/json")


def test_error_envelope_for_unknown_resource(sandbox_account):
    response = sandbox_account.get("/order-service/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"errors"}
    assert body["errors"][0]["code"] == "CMNC-404"
    assert body["errors"][0]["message"]
    assert response.headers["ruid"]


def test_null_keys_are_left_out(sandbox_account, seeded_sale):
    order = sandbox_account.get(f"/order-service/order/{seeded_sale.order_id}").json()["response"][
        0
    ]
    assert "externalRef" not in order  # seeded without one
    assert "closedOn" not in order


def test_staff_token_auth(sandbox_account):
    response = requests.get(sandbox_account.url + CONFIG, headers=sandbox_account.staff_headers())
    assert response.status_code == 200


def test_wrong_or_missing_credentials_are_401_with_errors(sandbox_account):
    cases = [
        {},
        {"brightpearl-app-ref": sandbox_account.app_ref},
        {"brightpearl-app-ref": sandbox_account.app_ref, "brightpearl-account-token": "nope"},
        {
            "brightpearl-app-ref": "other",
            "brightpearl-account-token": sandbox_account.account_token,
        },
        {"brightpearl-app-ref": sandbox_account.app_ref, "brightpearl-staff-token": "nope"},
        {**sandbox_account.oauth_headers("not-a-token")},
        {**sandbox_account.oauth_headers(), "brightpearl-dev-ref": "wrong"},
    ]
    for headers in cases:
        response = requests.get(sandbox_account.url + CONFIG, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["errors"][0]["code"], headers


def test_unknown_account_is_rejected(sandbox, sandbox_account):
    url = sandbox.api_url_template.format(account="nobody") + CONFIG
    response = requests.get(url, headers=sandbox_account.private_headers())
    assert response.status_code == 401
    assert "errors" in response.json()


def test_oauth_call_expiry_and_refresh_rotation(sandbox_account):
    url = sandbox_account.url + CONFIG
    response = requests.get(url, headers=sandbox_account.oauth_headers())
    assert response.status_code == 200
    instance = response.headers["brightpearl-installed-integration-instance-id"]
    assert instance == str(sandbox_account.installed_integration_instance_id)

    sandbox_account.control.expire_oauth()
    expired = requests.get(url, headers=sandbox_account.oauth_headers())
    assert expired.status_code == 401
    assert expired.json() == {"response": "Authorization token expired"}

    form = {
        "grant_type": "refresh_token",
        "refresh_token": sandbox_account.oauth["refreshToken"],
        "client_id": sandbox_account.oauth["clientId"],
        "client_secret": sandbox_account.oauth["clientSecret"],
    }
    token = requests.post(sandbox_account.oauth["tokenUrl"], data=form)
    assert token.status_code == 200
    tokens = token.json()
    assert set(tokens) >= {
        "access_token",
        "refresh_token",
        "api_domain",
        "token_type",
        "expires_in",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"] != sandbox_account.oauth["refreshToken"]

    fresh = requests.get(url, headers=sandbox_account.oauth_headers(tokens["access_token"]))
    assert fresh.status_code == 200
    old = requests.get(url, headers=sandbox_account.oauth_headers())
    assert old.json() == {"response": "Authorization token expired"}

    # The old refresh token is spent; the rotated one works.
    assert requests.post(sandbox_account.oauth["tokenUrl"], data=form).status_code == 400
    rotated = requests.post(
        sandbox_account.oauth["tokenUrl"], data={**form, "refresh_token": tokens["refresh_token"]}
    )
    assert rotated.status_code == 200


def test_token_endpoint_checks_the_client(sandbox_account):
    form = {
        "grant_type": "refresh_token",
        "refresh_token": sandbox_account.oauth["refreshToken"],
        "client_id": sandbox_account.oauth["clientId"],
        "client_secret": "wrong",
    }
    response = requests.post(sandbox_account.oauth["tokenUrl"], data=form)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_throttle_503_with_headers_then_recovers(sandbox_account):
    sandbox_account.control.set_throttle(budget=3, window_seconds=0.5)
    remaining = [int(sandbox_account.get(CONFIG).headers["brightpearl-requests-remaining"])]
    remaining += [int(sandbox_account.get(CONFIG).headers["brightpearl-requests-remaining"])]
    remaining += [int(sandbox_account.get(CONFIG).headers["brightpearl-requests-remaining"])]
    assert remaining == [2, 1, 0]
    throttled = sandbox_account.get(CONFIG)
    assert throttled.status_code == 503
    assert throttled.json()["errors"]
    wait_ms = int(throttled.headers["brightpearl-next-throttle-period"])
    assert 0 <= wait_ms <= 500
    time.sleep(wait_ms / 1000 + 0.05)
    assert sandbox_account.get(CONFIG).status_code == 200


def test_id_sets_with_ranges_and_lists(sandbox_account):
    created = sandbox_account.control.seed(
        contacts=[{"firstName": "A"}],
        products=[{"sku": "IDSET-1"}],
    )
    orders = sandbox_account.control.seed(
        orders=[{"contactId": created["contacts"][0], "rows": [{"sku": "IDSET-1"}]}] * 6
    )["orders"]
    first, last = orders[0], orders[-1]
    ids_text = f"{first}-{first + 2},{last},999999"
    response = sandbox_account.get(f"/order-service/order/{ids_text}")
    assert response.status_code == 200
    assert [o["id"] for o in response.json()["response"]] == [first, first + 1, first + 2, last]


def test_missing_order_is_empty_200(sandbox_account):
    response = sandbox_account.get("/order-service/order/987654")
    assert response.status_code == 200
    assert response.json() == {"response": []}


def test_more_than_200_ids_is_rejected(sandbox_account):
    assert sandbox_account.get("/order-service/order/1-200").status_code == 200
    response = sandbox_account.get("/order-service/order/1-201")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]
    listed = ",".join(str(i) for i in range(1, 202))
    assert sandbox_account.get(f"/order-service/order/{listed}").status_code == 400


def test_bad_id_set_is_400(sandbox_account):
    for bad in ("abc", "5-1", "0", "1,,2"):
        assert sandbox_account.get(f"/order-service/order/{bad}").status_code == 400, bad


def test_very_long_url_is_414(sandbox_account):
    ids = ",".join(str(100000 + i) for i in range(1500))
    response = sandbox_account.get(f"/order-service/order/{ids}")
    assert response.status_code == 414


def test_requests_are_logged(sandbox_account):
    sandbox_account.get(CONFIG)
    sandbox_account.get("/order-service/order/1")
    log = sandbox_account.control.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("GET", CONFIG, 200),
        ("GET", "/order-service/order/1", 200),
    ]
    assert log[0]["auth"] == "private"
    assert log[0]["ruid"]


def test_control_is_unbound_until_for_account(sandbox):
    control = SandboxControl(sandbox.url)
    try:
        control.state()
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("expected ValueError")


def test_private_id_set_parser():
    assert parse_id_set("1-3,7,9-10") == [1, 2, 3, 7, 9, 10]
    assert parse_id_set("5,5,4") == [5, 4]
    assert format_id_set([1, 2, 3, 7, 9, 10]) == "1-3,7,9-10"
    for bad in ("", "a", "3-1", "-1", "1-"):
        try:
            parse_id_set(bad)
        except IdSetError:
            continue
        raise AssertionError(bad)


def test_authorization_code_grant(sandbox, sandbox_account):
    from urllib.parse import parse_qs, urlparse

    redirect = "https://connector.example/oauth/callback"
    response = requests.get(
        f"{sandbox.url}/oauth/authorize/{sandbox_account.code}",
        params={
            "response_type": "code",
            "client_id": sandbox_account.app_ref,
            "redirect_uri": redirect,
            "state": "xyz",
        },
        allow_redirects=False,
    )
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    params = parse_qs(location.query)
    assert params["state"] == ["xyz"]
    form = {
        "grant_type": "authorization_code",
        "code": params["code"][0],
        "client_id": sandbox_account.app_ref,
        "client_secret": sandbox_account.oauth["clientSecret"],
        "redirect_uri": redirect,
    }
    tokens = requests.post(sandbox_account.oauth["tokenUrl"], data=form)
    assert tokens.status_code == 200
    access = tokens.json()["access_token"]
    ok = requests.get(sandbox_account.url + CONFIG, headers=sandbox_account.oauth_headers(access))
    assert ok.status_code == 200
    # A code works once.
    assert requests.post(sandbox_account.oauth["tokenUrl"], data=form).status_code == 400
