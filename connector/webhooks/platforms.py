"""Returns-platform webhooks: Loop (HMAC-signed) and ReturnGO (secret URL only).

Each view only says how its platform is verified and parsed; the shared base stores the raw
delivery first, answers fast and queues the one inbound-event task after commit. The body is a
hint: processing re-fetches the return from the platform and acts on its current state.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from returns.platforms.errors import WebhookParseError

from ..models import Connection, WebhookEvent
from ..services.platforms import adapter_for
from .base import Parsed, Rejected, WebhookView


class PlatformWebhookView(WebhookView):
    """A connection only receives webhooks of its own platform: any other route is a 404
    (as if the URL did not exist), checked before anything is stored."""

    def post(self, request: HttpRequest, connection_id: int, secret: str) -> HttpResponse:
        platform = (
            Connection.objects.filter(pk=connection_id).values_list("platform", flat=True).first()
        )
        if platform != self.source:
            return HttpResponse(status=404)
        return super().post(request, connection_id, secret)

    def parse(self, connection: Connection, body: bytes) -> Parsed:
        adapter = adapter_for(connection)
        try:
            hint = adapter.parse_webhook(body)
        except WebhookParseError as exc:
            raise Rejected(str(exc)) from None
        return Parsed(
            event=hint.event_name,
            resource_type="return",
            resource_ids=hint.external_id,
            dedupe_key=hint.dedupe_key,
        )


class LoopWebhookView(PlatformWebhookView):
    """`X-Loop-Signature` = base64(HMAC-SHA256(signing secret, raw body)), checked on the raw
    bytes in constant time by the adapter. Missing or wrong → 401, recorded as rejected."""

    source = WebhookEvent.Source.LOOP

    def verify(self, request: HttpRequest, connection: Connection, body: bytes) -> None:
        if not connection.platform_webhook_secret:
            raise Rejected(
                "No Loop webhook signing secret is configured for this connection.", status=401
            )
        if not adapter_for(connection).verify_webhook(request.headers, body):
            raise Rejected("X-Loop-Signature is missing or does not match the body.", status=401)


class ReturnGOWebhookView(PlatformWebhookView):
    """ReturnGO signs nothing (UNCONFIRMED): the secret in the URL is the authentication, and
    the re-fetch makes a forged hint harmless."""

    source = WebhookEvent.Source.RETURNGO
