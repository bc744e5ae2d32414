"""The generic JSON intake API: auth, idempotent upserts, refunds, reads, bad input."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from connector.intake_api.authentication import issue_intake_token
from connector.models import BindingState, Connection, SalesCredit, SyncRun
from returns.models import Refund, Rma, RmaLine
from tests.connector.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

UPSERT = "/api/intake/rmas/"


def detail(external_id: str) -> str:
    return f"/api/intake/rmas/{external_id}/"


def refunds(external_id: str) -> str:
    return f"/api/intake/rmas/{external_id}/refunds/"


@pytest.fixture
def intake_connection():
    return ConnectionFactory(platform="generic", platform_api_key="")


@pytest.fixture
def token(intake_connection):
    return issue_intake_token(intake_connection)


@pytest.fixture
def api(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def rma_body(external_id="R-1001", **overrides) -> dict:
    body = {
        "external_id": external_id,
        "rma_number": f"RMA-{external_id}",
        "status": "approved",
        "order_id": "5550001",
        "order_name": "#1001",
        "currency": "GBP",
        "customer_email": "ada@example.com",
        "updated_at": "2026-11-23T10:00:00Z",
        "lines": [
            {"line_id": "a", "sku": "SHIRT-M", "quantity": 1, "unit_price": "20.00", "tax": 4},
            {"line_id": "b", "sku": "SHIRT-M", "quantity": 1, "unit_price": "20.00", "tax": 4},
            {"line_id": "c", "sku": "SOCKS", "quantity": "2", "unit_price": 5.5},
        ],
    }
    body.update(overrides)
    return body


# --- authentication -------------------------------------------------------------------------
def test_missing_token_is_401_with_the_scheme(intake_connection):
    response = APIClient().post(UPSERT, rma_body(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not Rma.objects.exists()


@pytest.mark.parametrize(
    "header", ["Token wrong-token", "Token", "Token a b", "Bearer whatever", "Token \u00e9"]
)
def test_wrong_or_malformed_token_is_401(token, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(detail("R-1"))
    assert response.status_code == 401


def test_only_the_hash_of_the_token_is_stored(intake_connection, token):
    intake_connection.refresh_from_db()
    assert intake_connection.intake_token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = json.dumps(
        list(Connection.objects.filter(pk=intake_connection.pk).values()), default=str
    )
    assert token not in stored


def test_a_new_token_replaces_the_old_one(intake_connection, token):
    newer = issue_intake_token(intake_connection)
    old_client, new_client = APIClient(), APIClient()
    old_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    new_client.credentials(HTTP_AUTHORIZATION=f"Token {newer}")
    assert old_client.get(detail("x")).status_code == 401
    assert new_client.get(detail("x")).status_code == 404


def test_disabled_connection_is_403(intake_connection, api):
    Connection.objects.filter(pk=intake_connection.pk).update(enabled=False)
    response = api.post(UPSERT, rma_body(), format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "The connection is disabled."
    assert not Rma.objects.exists()


def test_non_generic_connection_is_403():
    loop = ConnectionFactory(platform="loop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_intake_token(loop)}")
    response = client.post(UPSERT, rma_body(), format="json")
    assert response.status_code == 403
    assert "Generic JSON intake API" in response.json()["detail"]


def test_works_with_login_required_middleware_and_no_csrf(api, token):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        UPSERT,
        data=json.dumps(rma_body()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 201
    assert Client().get("/api/schema/").status_code == 200


# --- upsert -----------------------------------------------------------------------------------
def test_upsert_creates_then_updates_the_same_rma(api, intake_connection):
    first = api.post(UPSERT, rma_body(), format="json")
    assert first.status_code == 201, first.json()
    data = first.json()
    assert (data["external_id"], data["status"], data["flagged"]) == ("R-1001", "approved", False)
    assert data["problems"] == [] and data["credit_id"] is None
    lines = {line["sku"]: line for line in data["lines"]}
    assert lines["SHIRT-M"]["quantity"] == 2  # per-unit lines aggregate by SKU
    assert lines["SOCKS"]["quantity"] == 2
    assert lines["SHIRT-M"]["platform_line_ids"] == ["a", "b"]
    line_ids = sorted(RmaLine.objects.values_list("pk", flat=True))

    second = api.post(UPSERT, rma_body(), format="json")
    assert second.status_code == 200
    assert Rma.objects.count() == 1
    assert sorted(RmaLine.objects.values_list("pk", flat=True)) == line_ids
    assert second.json()["lines"] == data["lines"]
    rma = Rma.objects.get()
    assert (rma.connection, rma.platform) == (intake_connection, "generic")


def test_an_older_update_is_ignored(api):
    api.post(UPSERT, rma_body(), format="json")
    older = rma_body(updated_at="2026-11-22T10:00:00Z", status="cancelled")
    response = api.post(UPSERT, older, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"


def test_status_never_moves_backwards(api):
    api.post(UPSERT, rma_body(), format="json")
    Rma.objects.update(status="credited", furthest_status="credited")
    response = api.post(
        UPSERT, rma_body(status="requested", updated_at="2026-11-23T11:00:00Z"), format="json"
    )
    assert response.json()["status"] == "credited"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"lines": []}, "no lines"),
        ({"lines": [{"sku": "A", "unit_price": "-3.00"}]}, "is negative"),
        ({"lines": [{"sku": "A", "unit_price": "abc"}]}, "is not a number"),
        ({"lines": [{"sku": "A", "quantity": -1}]}, "quantity -1 is negative"),
        ({"lines": [{"sku": "A", "quantity": 1.5}]}, "not a whole number"),
        ({"currency": "XYZ"}, "Unknown currency"),
        ({"order_id": "", "order_name": ""}, "names no original order"),
        ({"status": "teleported"}, "Unknown platform status"),
        ({"totals": {"refund": "lots"}}, "is not a number"),
        # Each amount fits a Decimal(14, 4) column, their sum for the SKU does not.
        ({"lines": [{"sku": "A", "discount": 9e9}, {"sku": "A", "discount": 9e9}]}, "too large"),
    ],
)
def test_bad_data_is_stored_flagged_and_explained(api, overrides, problem):
    response = api.post(UPSERT, rma_body(**overrides), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["flagged"] is True
    assert any(problem in p for p in data["problems"]), data["problems"]
    rma = Rma.objects.get()
    assert rma.flagged and problem in rma.flag_reason


def test_fixing_the_data_clears_the_intake_flag(api):
    api.post(UPSERT, rma_body(currency="XYZ"), format="json")
    response = api.post(UPSERT, rma_body(updated_at="2026-11-23T11:00:00Z"), format="json")
    assert response.json()["flagged"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "approved"}, "external_id"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "a/b"}, "external_id"),
        ({"external_id": "x" * 65}, "external_id"),
        ({"external_id": "R1", "lines": "SHIRT"}, "lines"),
        ({"external_id": "R1", "lines": [{"sku": "A", "quantity": {"n": 1}}]}, "lines"),
        ({"external_id": "R1", "lines": [{"sku": "A", "unit_price": True}]}, "lines"),
        ({"external_id": "R1", "updated_at": "yesterday"}, "updated_at"),
        ({"external_id": "R1", "order_name": "bad\u0000name"}, "order_name"),
        ({"external_id": "R1", "refunds": [{"amount": "1.00"}]}, "refunds"),
    ],
)
def test_unusable_requests_are_400_with_field_errors(api, body, field):
    response = api.post(UPSERT, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Rma.objects.exists()


@pytest.mark.parametrize("raw", [b"[1, 2]", b'{"external_id": ', b"null", b'"R-1"'])
def test_non_object_or_broken_json_is_400(api, raw):
    response = api.generic("POST", UPSERT, raw, content_type="application/json")
    assert response.status_code == 400
    assert not Rma.objects.exists()


def test_approved_rma_enqueues_a_sync_after_commit(
    api, intake_connection, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        "connector.tasks.sync_connection.apply_async",
        lambda args, kwargs, **options: queued.append((*args, kwargs)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        api.post(UPSERT, rma_body(), format="json")
        api.post(UPSERT, rma_body("R-1002"), format="json")  # the pending task covers it
    assert queued == [(intake_connection.pk, {"trigger": SyncRun.Trigger.INTAKE, "pending": True})]

    queued.clear()
    Connection.objects.update(sync_queued_at=None)  # the pending task started
    with django_capture_on_commit_callbacks(execute=True):
        api.post(UPSERT, rma_body("R-2", status="requested"), format="json")
        api.post(UPSERT, rma_body("R-3", currency="XYZ"), format="json")  # flagged
    assert queued == []


# --- refunds ----------------------------------------------------------------------------------
def test_refund_is_added_once_and_updated_in_place(api):
    api.post(UPSERT, rma_body(), format="json")
    refund = {"external_id": "rf-1", "amount": "28.00", "refunded_at": "2026-11-23T12:00:00Z"}
    first = api.post(refunds("R-1001"), refund, format="json")
    assert first.status_code == 201, first.json()
    [stored] = first.json()["refunds"]
    assert (stored["external_id"], stored["amount"], stored["currency"]) == (
        "rf-1",
        "28.0000",
        "GBP",
    )
    again = api.post(refunds("R-1001"), dict(refund, amount="29.00"), format="json")
    assert again.status_code == 200
    assert Refund.objects.get().amount == 29
    # The RMA itself is unchanged, and re-sending the RMA keeps the refund.
    assert again.json()["lines"] == first.json()["lines"]
    api.post(UPSERT, rma_body(), format="json")
    assert Refund.objects.count() == 1


def test_bad_refund_is_stored_and_flags_the_rma(api):
    api.post(UPSERT, rma_body(), format="json")
    response = api.post(
        refunds("R-1001"), {"external_id": "rf-2", "amount": "-5", "currency": "QQQ"}, format="json"
    )
    assert response.status_code == 201
    data = response.json()
    assert data["flagged"] is True
    assert any("rf-2 amount: -5 is negative" in p for p in data["problems"])
    assert any("unknown currency 'QQQ'" in p for p in data["problems"])


def test_refund_outcome_and_shop_amount_are_taken_and_a_bad_outcome_is_400(api):
    api.post(UPSERT, rma_body(), format="json")
    credit = {
        "external_id": "sc-1",
        "amount": "23.00",
        "currency": "EUR",
        "outcome": "store_credit",
        "shop_amount": "20.00",
        "shop_currency": "gbp",
        "reference": "GIFT-9",
    }
    response = api.post(refunds("R-1001"), credit, format="json")
    assert response.status_code == 201, response.json()
    stored = Refund.objects.get(external_id="sc-1")
    assert (stored.outcome, stored.shop_amount, stored.shop_currency, stored.reference) == (
        "store_credit",
        20,
        "GBP",
        "GIFT-9",
    )
    assert response.json()["refunds"][0]["outcome"] == "store_credit"
    bad = api.post(
        refunds("R-1001"), dict(credit, external_id="x", outcome="voucher"), format="json"
    )
    assert bad.status_code == 400 and "outcome" in bad.json()
    assert not Refund.objects.filter(external_id="x").exists()


def test_refund_for_an_unknown_rma_is_404(api):
    response = api.post(refunds("nope"), {"external_id": "rf", "amount": 1}, format="json")
    assert response.status_code == 404


def test_refund_without_id_is_400(api):
    api.post(UPSERT, rma_body(), format="json")
    response = api.post(refunds("R-1001"), {"amount": 1}, format="json")
    assert response.status_code == 400
    assert "external_id" in response.json()


def test_refund_on_a_credited_rma_enqueues_a_sync(
    api, intake_connection, monkeypatch, django_capture_on_commit_callbacks
):
    api.post(UPSERT, rma_body(), format="json")
    rma = Rma.objects.get()
    SalesCredit.objects.create(
        connection=intake_connection,
        rma=rma,
        external_ref="ref-1",
        credit_id=9001,
        state=BindingState.CREATED,
    )
    Rma.objects.update(status="credited", furthest_status="credited")
    queued = []
    monkeypatch.setattr(
        "connector.tasks.sync_connection.apply_async",
        lambda args, kwargs, **options: queued.append(args[0]),
    )
    with django_capture_on_commit_callbacks(execute=True):
        api.post(refunds("R-1001"), {"external_id": "rf-1", "amount": "5"}, format="json")
    assert queued == [intake_connection.pk]


# --- reading ----------------------------------------------------------------------------------
def test_read_shows_the_credit_and_line_quantities(api, intake_connection):
    api.post(UPSERT, rma_body(), format="json")
    rma = Rma.objects.get()
    SalesCredit.objects.create(
        connection=intake_connection,
        rma=rma,
        external_ref="ref-1",
        credit_id=4242,
        state=BindingState.CREATED,
    )
    RmaLine.objects.filter(rma=rma, sku="SHIRT-M").update(quantity_received=2, quantity_restocked=1)
    response = api.get(detail("R-1001"))
    assert response.status_code == 200
    data = response.json()
    assert (data["credit_id"], data["credit_state"]) == (4242, "created")
    shirt = next(line for line in data["lines"] if line["sku"] == "SHIRT-M")
    assert (shirt["quantity"], shirt["quantity_received"], shirt["quantity_restocked"]) == (2, 2, 1)


def test_another_connections_rma_is_invisible(api):
    other = ConnectionFactory(platform="generic")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_intake_token(other)}")
    client.post(UPSERT, rma_body("SECRET-1"), format="json")
    assert api.get(detail("SECRET-1")).status_code == 404
    # The same external ID on two connections is two RMAs.
    assert api.post(UPSERT, rma_body("SECRET-1"), format="json").status_code == 201
    assert Rma.objects.filter(external_id="SECRET-1").count() == 2


# --- end to end: the credit follows in Brightpearl ---------------------------------------------
def test_approved_rma_gets_its_credit_within_the_request_cycle(
    world, eager, django_capture_on_commit_callbacks
):
    connection = world.connection
    connection.platform = "generic"
    connection.platform_api_key = ""
    connection.platform_api_url = ""
    connection.save()
    sku = f"KETTLE-{world.bp.code}"
    sale = world.sale([(sku, 2, "30.00", "6.00")])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_intake_token(connection)}")
    body = {
        "external_id": "portal-77",
        "order_id": sale.shop_order_id,
        "order_name": sale.order_name,
        "currency": "GBP",
        "lines": [{"sku": sku, "quantity": 1, "unit_price": "15.00"}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(UPSERT, body, format="json")
    assert response.status_code == 201, response.json()
    [credit] = world.credits()
    assert credit["parentOrderId"] == sale.order_id
    data = client.get(detail("portal-77")).json()
    assert data["status"] == "credited"
    assert data["credit_id"] == credit["id"]
    run = SyncRun.objects.get()
    assert (run.trigger, run.status) == (SyncRun.Trigger.INTAKE, SyncRun.Status.SUCCEEDED)

    # The portal refunds the customer: the payment follows against the credit.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            refunds("portal-77"), {"external_id": "r1", "amount": "18.00"}, format="json"
        )
    assert response.status_code == 201
    payments = [p for p in world.payments() if p["orderId"] == credit["id"]]
    assert len(payments) == 1
    assert client.get(detail("portal-77")).json()["refunds"][0]["payment_state"] == "created"


# --- admin: issuing a token ---------------------------------------------------------------------
def test_admin_action_shows_the_token_once_and_stores_its_hash(admin_client, intake_connection):
    loop = ConnectionFactory(platform="loop")
    response = admin_client.post(
        "/admin/connector/connection/",
        {"action": "issue_intake_token", "_selected_action": [intake_connection.pk, loop.pk]},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    [issued] = [m for m in shown if "intake API token" in m]
    assert "not shown again" in issued
    token = issued.split("intake API token ")[1].split(" ")[0]
    intake_connection.refresh_from_db()
    assert intake_connection.intake_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert any("no token issued" in m and loop.name in m for m in shown)
    loop.refresh_from_db()
    assert loop.intake_token_hash == ""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(detail("x")).status_code == 404  # authenticated: just no such RMA
    # The page after the action does not show it again.
    again = admin_client.get("/admin/connector/connection/")
    assert token.encode() not in again.content


def test_rma_admin_links_to_its_sync_events(admin_client, api):
    api.post(UPSERT, rma_body(), format="json")
    rma = Rma.objects.get()
    response = admin_client.get(f"/admin/returns/rma/{rma.pk}/change/")
    assert response.status_code == 200
    assert f"/admin/connector/syncevent/?rma__id__exact={rma.pk}".encode() in response.content
