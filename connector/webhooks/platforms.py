"""Returns-platform webhooks: one view for every platform whose registry entry says it sends
webhooks (`returns.platforms.registry`), at /webhooks/<platform>/<connection>/<secret>/.

The view only says how a platform is verified and parsed — and both come from the platform's
package (its adapter's `verify_webhook` / `parse_webhook`, its spec's signature header); the
shared base stores the raw delivery first, answers fast and queues the one inbound-event task
after commit. The body is a hint: processing re-fetches the return from the platform.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from returns.platforms import registry
from returns.platforms.errors import WebhookParseError

from ..models import Connection
from ..services.platforms import adapter_for
from .base import Parsed, Rejected, WebhookView


class PlatformWebhookView(WebhookView):
    """A connection only receives webhooks of its own platform, and only a platform that sends
    webhooks has a route: anything else is a 404 (as if the URL did not exist), checked before
    anything is stored."""

    def post(
        self, request: HttpRequest, platform: str, connection_id: int, secret: str
    ) -> HttpResponse:
        spec = registry.find(platform)
        if spec is None or not spec.receives_webhooks:
            return HttpResponse(status=404)
        self.spec, self.source = spec, spec.kind
        return super().post(request, connection_id, secret)

    def routed(self, connection: Connection) -> bool:
        return connection.platform == self.spec.kind

    def verify(self, request: HttpRequest, connection: Connection, body: bytes) -> None:
        """A platform that signs (Loop: `X-Loop-Signature` = base64(HMAC-SHA256(signing secret,
        raw body))) is checked on the raw bytes in constant time by its adapter: missing or
        wrong → 401, recorded as rejected. One that signs nothing (ReturnGO, UNCONFIRMED) is
        authenticated by the secret in the URL, and the re-fetch makes a forged hint harmless."""
        if not self.spec.signs_webhooks:
            return
        if not connection.platform_webhook_secret:
            raise Rejected(
                f"No {self.spec.label} webhook signing secret is configured for this connection.",
                status=401,
            )
        if not adapter_for(connection).verify_webhook(request.headers, body):
            raise Rejected(
                f"{self.spec.webhook_signature_header} is missing or does not match the body.",
                status=401,
            )

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
