"""One registry per platform: a platform registered in one place (here, a fake "acme") is a
valid choice on connections, RMAs and inbound events, has its webhook route, its signature
check, its status map, its required settings, its daily call budget and its public API — with
no other edit. And a kind nobody registered has none of them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime

import pytest
from django.core.exceptions import ValidationError

from connector.models import Connection, WebhookEvent
from connector.outbound import platform_url_problem
from connector.services import inbound, platform_events
from connector.services.call_budget import SharedDailyCallBudget
from connector.services.platforms import adapter_for
from returns import lifecycle
from returns.models import Rma
from returns.platforms import ReturnsPlatform, WebhookHint, registry
from returns.platforms.base import ChangeFeed, NeutralLine, NeutralRma
from returns.platforms.errors import UnknownPlatform

from .factories import ConnectionFactory

SIGNING_SECRET = "acme-signing-secret"


class AcmePlatform(ReturnsPlatform):
    """A platform that answers from memory: enough for intake by webhook."""

    def fetch_changed(
        self, since: datetime, until: datetime | None = None, held=None
    ) -> ChangeFeed:
        return ChangeFeed(iter(()))

    def fetch(self, external_id: str) -> NeutralRma:
        return NeutralRma(
            platform="acme",
            external_id=external_id,
            platform_status="Submitted",
            rma_number=f"ACME-{external_id}",
            order_name="#1001",
            currency="GBP",
            lines=[NeutralLine(platform_line_id="l1", sku="SKU-1", unit_price="10.00")],
        )

    def refunds(self, rma):
        return []

    def list_destinations(self):
        return []

    def process(self, rma) -> None: ...

    def flag(self, rma, reason: str) -> None: ...

    def add_note(self, rma, text: str) -> None: ...

    def close(self, rma) -> None: ...

    def mark_received(self, rma, lines) -> bool:
        return False

    def verify_webhook(self, headers, raw_body: bytes) -> bool:
        given = headers.get("X-Acme-Signature") or ""
        wanted = hmac.new(self.webhook_secret.encode(), raw_body, hashlib.sha256).hexdigest()
        return bool(self.webhook_secret) and hmac.compare_digest(given, wanted)

    def parse_webhook(self, raw_body: bytes) -> WebhookHint:
        data = json.loads(raw_body)
        return WebhookHint(data["topic"], str(data["id"]), f"acme:{data['id']}:{data['topic']}")


ACME = registry.PlatformSpec(
    kind="acme",
    label="Acme Returns",
    statuses={"submitted": lifecycle.REQUESTED, "accepted": lifecycle.APPROVED},
    adapter=f"{__name__}:AcmePlatform",
    public_api_url="https://api.acme-returns.example/v2",
    webhook_signature_header="X-Acme-Signature",
    daily_call_limit=50,
    daily_write_reserve=5,
    required_settings={"platform_api_key": "Acme needs an API key."},
)


@pytest.fixture
def acme():
    registry.register(ACME)
    yield ACME
    registry.unregister("acme")


def acme_connection(**fields) -> Connection:
    fields.setdefault("platform_webhook_secret", SIGNING_SECRET)
    return ConnectionFactory(platform="acme", platform_api_key="acme-key", **fields)


def post_acme(client, connection, body: bytes, signature: str | None = None):
    headers = {}
    if signature is not None:
        headers["HTTP_X_ACME_SIGNATURE"] = signature
    return client.post(
        f"/webhooks/acme/{connection.pk}/{connection.webhook_secret}/",
        data=body,
        content_type="application/json",
        **headers,
    )


def signed(body: bytes) -> str:
    return hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_an_unregistered_kind_is_nowhere():
    assert "acme" not in dict(registry.choices())
    assert lifecycle.map_platform_status("acme", "submitted") is None
    with pytest.raises(UnknownPlatform):
        registry.get("acme")


@pytest.mark.django_db
def test_an_unregistered_kind_is_refused_and_has_no_route(client):
    connection = ConnectionFactory()
    connection.platform = "acme"
    with pytest.raises(ValidationError) as refused:
        connection.full_clean()
    assert "platform" in refused.value.message_dict
    response = client.post(
        f"/webhooks/acme/{connection.pk}/{connection.webhook_secret}/",
        data=b"{}",
        content_type="application/json",
    )
    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_registered_platform_is_a_valid_choice_with_its_required_settings(acme):
    assert ("acme", "Acme Returns") in Connection._meta.get_field("platform").choices
    assert ("acme", "Acme Returns") in Rma._meta.get_field("platform").choices
    assert ("acme", "Acme Returns") in WebhookEvent._meta.get_field("source").choices

    connection = ConnectionFactory(platform="acme", platform_api_key="acme-key")
    connection.full_clean()  # a valid choice
    connection.platform_api_key = ""
    with pytest.raises(ValidationError) as refused:
        connection.full_clean()
    assert refused.value.message_dict["platform_api_key"] == ["Acme needs an API key."]


def test_the_connection_page_shows_a_registered_platforms_own_settings_only(acme, admin_client):
    """Each platform setting's input names the platforms that use it, from the registry: Acme
    (API key, signed webhooks) gets the key, address and signing secret, not ReturnGO's shop."""
    page = admin_client.get("/admin/connector/connection/add/").content.decode()

    def platforms_of(name: str) -> set[str]:
        found = re.search(rf'<[^>]*name="{name}"[^>]*data-platforms="([^"]*)"', page) or re.search(
            rf'<[^>]*data-platforms="([^"]*)"[^>]*name="{name}"', page
        )
        assert found, f"{name} carries no data-platforms"
        return set(found.group(1).split())

    assert platforms_of("platform_api_key") == {"loop", "returngo", "acme"}
    assert platforms_of("platform_webhook_secret") == {"loop", "acme"}
    assert platforms_of("platform_shop_name") == {"returngo"}
    assert "connector/platform_fields.js" in page


def test_a_registered_platform_maps_its_own_statuses(acme):
    assert lifecycle.map_platform_status("acme", " Accepted ") == lifecycle.APPROVED
    assert lifecycle.map_platform_status("acme", "open") is None  # Loop's word, not Acme's


@pytest.mark.django_db
def test_a_registered_platform_gets_its_adapter_budget_and_public_api(acme):
    connection = acme_connection()
    adapter = adapter_for(connection)
    assert isinstance(adapter, AcmePlatform)
    budget = adapter.client_options["budget"]
    assert isinstance(budget, SharedDailyCallBudget)
    assert (budget.limit, budget.write_reserve) == (50, 5)
    assert platform_url_problem("acme", "https://api.acme-returns.example/v2") is None
    assert platform_url_problem("acme", "https://evil.example/v2") is not None


@pytest.mark.django_db
def test_a_registered_platform_receives_verified_webhooks_end_to_end(acme, client):
    connection = acme_connection()
    body = json.dumps({"topic": "return.created", "id": 77}).encode()

    unsigned = post_acme(client, connection, body)
    assert unsigned.status_code == 401
    assert "X-Acme-Signature" in WebhookEvent.objects.get().error

    response = post_acme(client, connection, body, signed(body))
    assert response.status_code == 202
    event = WebhookEvent.objects.get(pk=response.json()["received"])
    assert (event.source, event.resource_ids) == ("acme", "77")
    assert inbound.handler_for("acme") is platform_events.handle

    inbound.process(event.pk)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    rma = Rma.objects.get(connection=connection, external_id="77")
    assert (rma.platform, rma.status, rma.rma_number) == ("acme", "requested", "ACME-77")


@pytest.mark.django_db
def test_a_connection_of_another_platform_gets_no_acme_webhooks(acme, client):
    loop_connection = ConnectionFactory(platform="loop")
    body = json.dumps({"topic": "return.created", "id": 1}).encode()
    assert post_acme(client, loop_connection, body, signed(body)).status_code == 404
    assert not WebhookEvent.objects.exists()
