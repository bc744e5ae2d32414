"""Security cases every inbound webhook endpoint must pass (django-anymail style).

Subclass `WebhookSecurityCases` in a test module, mark it `pytest.mark.django_db`, and define:
- `source` (a WebhookEvent.Source value),
- `url(connection, secret)` → the endpoint path,
- `valid_body(connection)` → bytes of an acceptable delivery,
- `signed_headers(connection, body)` → extra headers a genuine sender adds (default none),
- a `hook_connection` fixture → the Connection to deliver to.
"""

import pytest
from django.test import Client

from connector.models import WebhookEvent


class WebhookSecurityCases:
    source = ""

    def url(self, connection, secret):
        raise NotImplementedError

    def valid_body(self, connection) -> bytes:
        raise NotImplementedError

    def signed_headers(self, connection, body: bytes) -> dict:
        return {}

    def post(self, connection, body: bytes, secret=None, headers=None, client=None):
        client = client or Client()
        secret = connection.webhook_secret if secret is None else secret
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        return client.post(
            self.url(connection, secret), data=body, content_type="application/json", **extra
        )

    def test_valid_delivery_is_stored_and_accepted(self, hook_connection):
        body = self.valid_body(hook_connection)
        response = self.post(
            hook_connection, body, headers=self.signed_headers(hook_connection, body)
        )
        assert response.status_code in (200, 202), response.content
        event = WebhookEvent.objects.get(connection=hook_connection, source=self.source)
        assert event.body == body.decode()
        assert event.status != WebhookEvent.Status.REJECTED

    def test_wrong_secret_answers_404_and_stores_nothing(self, hook_connection):
        body = self.valid_body(hook_connection)
        response = self.post(
            hook_connection,
            body,
            secret="not-the-secret",
            headers=self.signed_headers(hook_connection, body),
        )
        assert response.status_code == 404
        assert not WebhookEvent.objects.exists()

    def test_missing_secret_answers_404(self, hook_connection):
        body = self.valid_body(hook_connection)
        response = Client().post(
            self.url(hook_connection, "x")[: -len("x/")], data=body, content_type="application/json"
        )
        assert response.status_code == 404
        assert not WebhookEvent.objects.exists()

    def test_unknown_connection_answers_404(self, hook_connection):
        body = self.valid_body(hook_connection)
        url = self.url(hook_connection, hook_connection.webhook_secret).replace(
            f"/{hook_connection.pk}/", f"/{hook_connection.pk + 1000}/"
        )
        response = Client().post(url, data=body, content_type="application/json")
        assert response.status_code == 404
        assert not WebhookEvent.objects.exists()

    def test_another_connections_secret_answers_404(self, hook_connection, django_user_model):
        from tests.connector.factories import ConnectionFactory

        other = ConnectionFactory()
        body = self.valid_body(hook_connection)
        response = self.post(
            hook_connection,
            body,
            secret=other.webhook_secret,
            headers=self.signed_headers(hook_connection, body),
        )
        assert response.status_code == 404

    def test_malformed_json_is_recorded_and_answered_400(self, hook_connection):
        body = b'{"not json'
        response = self.post(
            hook_connection, body, headers=self.signed_headers(hook_connection, body)
        )
        assert response.status_code in (400, 401)
        event = WebhookEvent.objects.get(connection=hook_connection)
        assert event.status == WebhookEvent.Status.REJECTED
        assert event.error

    def test_oversized_body_is_recorded_and_refused(self, hook_connection, settings):
        settings.WEBHOOK_MAX_BODY_BYTES = 64
        body = self.valid_body(hook_connection) + b" " * 100
        response = self.post(
            hook_connection, body, headers=self.signed_headers(hook_connection, body)
        )
        assert response.status_code == 413
        event = WebhookEvent.objects.get(connection=hook_connection)
        assert event.status == WebhookEvent.Status.REJECTED
        assert "larger than" in event.error

    def test_works_with_login_required_middleware_and_csrf_checks(self, hook_connection, settings):
        assert "django.contrib.auth.middleware.LoginRequiredMiddleware" in settings.MIDDLEWARE
        body = self.valid_body(hook_connection)
        response = self.post(
            hook_connection,
            body,
            headers=self.signed_headers(hook_connection, body),
            client=Client(enforce_csrf_checks=True),
        )
        assert response.status_code in (200, 202)
        assert b"login" not in response.content.lower()


@pytest.fixture
def anonymous_client():
    return Client()
