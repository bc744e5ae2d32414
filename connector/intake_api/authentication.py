"""Token authentication per connection: `Authorization: Token <token>`.

Only the SHA-256 of a token is stored (`Connection.intake_token_hash`); the plain token is shown
once when staff issue it. A token is 256 random bits, so a plain hash is enough (no salt or slow
hash needed: nothing to brute-force). The API serves *generic* connections only: a Loop or
ReturnGO connection's returns come from that platform, and mixing sources on one connection
would send the platform actions it cannot apply.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from ..models import Connection, Platform

KEYWORD = "Token"
TOKEN_PREFIX = "rbc_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_intake_token(connection: Connection) -> str:
    """A new token for the connection (the previous one stops working). Returns the plain
    token: the caller shows it once; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = hash_token(token)
    Connection.objects.filter(pk=connection.pk).update(intake_token_hash=digest)
    connection.intake_token_hash = digest
    return token


class IntakeClient:
    """The authenticated caller: a connection's portal, not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, connection: Connection):
        self.connection = connection

    def __str__(self) -> str:
        return f"intake client of {self.connection}"


class IntakeTokenAuthentication(BaseAuthentication):
    """`request.user` is an `IntakeClient`, `request.auth` the `Connection`."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # no credentials: permissions answer 401
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Use the header: Authorization: Token <token>.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        digest = hash_token(token)
        connection = Connection.objects.filter(intake_token_hash=digest).first()
        stored = connection.intake_token_hash if connection else ""
        # The lookup is by hash (nothing about the token leaks through timing); compare anyway.
        if not stored or not hmac.compare_digest(stored, digest):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return IntakeClient(connection), connection

    def authenticate_header(self, request) -> str:
        return KEYWORD  # makes DRF answer 401 (with WWW-Authenticate), not 403


class ConnectionMayUseIntake(BasePermission):
    """Authenticated, enabled, and a generic connection (403 with the reason otherwise)."""

    message = "This connection may not use the intake API."

    def has_permission(self, request, view) -> bool:
        connection = request.auth
        if not isinstance(connection, Connection):
            return False
        if not connection.enabled:
            self.message = "The connection is disabled."
            return False
        if connection.platform != Platform.GENERIC:
            self.message = (
                f"This connection takes its returns from {connection.get_platform_display()}; "
                "the intake API is for connections whose platform is 'Generic JSON intake API'."
            )
            return False
        return True


class IntakeTokenScheme(OpenApiAuthenticationExtension):
    target_class = IntakeTokenAuthentication
    name = "IntakeToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>` — issued per connection by staff in the admin.",
        }
