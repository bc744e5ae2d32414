"""Hostile input at every inbound door: raw NUL bytes, `\\u0000` escapes, JSON nested
thousands deep, and hypothesis fuzzing of every endpoint and parser. Expected everywhere: a
clear 4xx (JSON), the raw event kept (escaped) and marked rejected, never a 5xx, never a
half-written row. Bounded so the whole module runs in a few seconds."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.intake_api.authentication import issue_intake_token
from connector.models import WebhookEvent
from returns.models import Rma
from returns.platforms.errors import MalformedPayload, WebhookParseError
from returns.platforms.loop.adapter import signature
from tests.connector.factories import ConnectionFactory

LOOP_SECRET = "loop-signing-secret-for-hostile-tests"
DEEP = b"[" * 100_000 + b"]" * 100_000
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def doors(db):
    """The three webhook endpoints, each with a connection of its own."""
    bp = ConnectionFactory(brightpearl_account="hostile")
    loop = ConnectionFactory(platform="loop", platform_webhook_secret=LOOP_SECRET)
    rgo = ConnectionFactory(platform="returngo", platform_shop_name="x.myshopify.com")
    return {
        "brightpearl": (bp, f"/webhooks/brightpearl/{bp.pk}/{bp.webhook_secret}/"),
        "loop": (loop, f"/webhooks/loop/{loop.pk}/{loop.webhook_secret}/"),
        "returngo": (rgo, f"/webhooks/returngo/{rgo.pk}/{rgo.webhook_secret}/"),
    }


def deliver(doors, source: str, body: bytes):
    _, url = doors[source]
    headers = {}
    if source == "loop":  # signed, so the body reaches the parser
        headers["HTTP_X_LOOP_SIGNATURE"] = signature(LOOP_SECRET, body)
    return Client().post(url, data=body, content_type="application/json", **headers)


SOURCES = ["brightpearl", "loop", "returngo"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "body, reason",
    [
        (b'{"id": "1\x002", "eventName": "RMA_CREATED"}', "NUL byte"),
        (b"\x00\x00\x00", "NUL byte"),
        (b'{"id": "7\\u0000", "rmaId": "7\\u0000", "eventName": "x"}', "NUL"),
        (DEEP, "nested deeper"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested deeper"),
        (b"\xff\xfe not utf-8", "not UTF-8"),
    ],
)
def test_hostile_bodies_are_a_400_and_kept_escaped_as_rejected(doors, source, body, reason):
    response = deliver(doors, source, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.REJECTED
    assert reason in event.error
    assert "\x00" not in event.body  # stored, escaped: PostgreSQL text refuses NUL
    if b"\x00" in body:
        assert "\\x00" in event.body
    assert len(event.body) >= min(len(body), 1000) or b"\xff" in body


@pytest.fixture
def intake(db):
    token = issue_intake_token(ConnectionFactory(platform="generic", platform_api_key=""))
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.mark.parametrize(
    "body, where",
    [
        (DEEP, "detail"),
        (b'{"external_id": "C\x00"}', "detail"),
        # an escaped NUL in a field: DRF's validator names the field
        (
            b'{"external_id": "A\\u0000", "order_name": "#1", "lines": [{"sku": "A"}]}',
            "external_id",
        ),
    ],
)
def test_intake_api_answers_hostile_json_with_a_json_400_and_stores_nothing(intake, body, where):
    response = intake.post("/api/intake/rmas/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert where in response.json()
    assert not Rma.objects.exists()


def test_intake_api_ignores_an_escaped_nul_in_an_unknown_field_and_stores_no_nul(intake):
    body = b'{"external_id": "B", "order_name": "#1", "lines": [{"sku": "A"}], "x": {"\\u0000": 1}}'
    response = intake.post("/api/intake/rmas/", data=body, content_type="application/json")
    assert response.status_code == 201
    assert "\\u0000" not in json.dumps(Rma.objects.get().raw)


def test_intake_api_path_with_a_nul_is_a_json_404(intake):
    response = intake.get("/api/intake/rmas/A%00B/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    response = intake.post(
        "/api/intake/rmas/A%00B/refunds/",
        data=json.dumps({"external_id": "r1", "amount": "1.00"}),
        content_type="application/json",
    )
    assert response.status_code in (400, 404)


# --- fuzzing: every inbound endpoint ------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "rmaId",
                    "eventName",
                    "accountCode",
                    "fullEvent",
                    "raisedOn",
                    "trigger",
                    "topic",
                    "state",
                    "updated_at",
                    "return_id",
                    "resourceType",
                    "data",
                    "x",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=6,
        )
    ),
    max_leaves=12,
)
bodies = (
    json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.builds(
        lambda depth, tail: b"[" * depth + tail,
        st.integers(min_value=0, max_value=3000),
        st.binary(max_size=8),
    )
)


@pytest.mark.parametrize("source", SOURCES)
def test_fuzzed_webhook_bodies_never_5xx_nor_leave_half_written_rows(doors, source):
    @FUZZ
    @given(body=bodies)
    def one(body):
        before = WebhookEvent.objects.count()
        response = deliver(doors, source, body)
        assert response.status_code < 500, (response.status_code, body[:200])
        new = list(WebhookEvent.objects.order_by("-pk")[: WebhookEvent.objects.count() - before])
        assert len(new) == 1  # every delivery is kept, exactly once
        event = new[0]
        if response.status_code == 202:
            assert event.status in ("received", "duplicate")
            assert event.event or event.resource_ids  # parsed hints were written with it
        else:
            assert event.status == "rejected" and event.error
            assert not event.dedupe_key  # nothing half-parsed was kept as a hint

    one()


def test_fuzzed_intake_requests_never_5xx(intake):
    @FUZZ
    @given(body=bodies)
    def one(body):
        before = Rma.objects.count()
        response = intake.post("/api/intake/rmas/", data=body, content_type="application/json")
        assert response.status_code < 500, (response.status_code, body[:200])
        assert response["Content-Type"].startswith("application/json")
        if response.status_code >= 400:
            assert Rma.objects.count() == before  # refused: nothing half-written

    one()


# --- fuzzing: every parser ----------------------------------------------------------------------


@FUZZ
@given(text=st.text(alphabet="0123456789-, \x00x", max_size=40) | st.integers())
def test_fuzzed_id_sets_parse_or_raise_value_error_within_the_cap(text):
    from brightpearl.idset import parse_id_set

    try:
        ids = parse_id_set(text, max_ids=2000)
    except ValueError:
        return
    assert 0 < len(ids) <= 2000 and ids == sorted(set(ids))


@FUZZ
@given(page=json_values)
def test_fuzzed_search_pages_zip_or_raise_value_error(page):
    from brightpearl.search import zip_rows

    try:
        rows = zip_rows(page)
    except ValueError:
        return
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)


@FUZZ
@given(payload=json_values)
def test_fuzzed_platform_payloads_become_neutral_or_a_clear_error(payload):
    from returns.platforms.loop.adapter import to_neutral as loop_neutral
    from returns.platforms.returngo.adapter import to_neutral as rgo_neutral

    for parse in (loop_neutral, rgo_neutral):
        try:
            parse(payload)
        except MalformedPayload:
            pass


@FUZZ
@given(body=bodies)
def test_fuzzed_platform_webhook_hints_parse_or_raise_parse_error(body):
    from returns.platforms import get_platform

    for kind in ("loop", "returngo"):
        adapter = get_platform(kind, api_key="k", shop_name="s", webhook_secret="w")
        try:
            adapter.parse_webhook(body)
        except WebhookParseError:
            pass
