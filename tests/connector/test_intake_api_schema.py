"""Property-based check of the intake API against its own OpenAPI schema (schemathesis).

Bounded: a handful of generated requests per operation, in-process against the WSGI app. Every
answer must be documented, match its schema, and none may be a 5xx.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from connector.intake_api.authentication import issue_intake_token
from tests.connector.factories import ConnectionFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


KNOWN = "known-rma"
# A handful per operation in every run; set INTAKE_API_FUZZ_EXAMPLES=500 for a longer hunt.
EXAMPLES = int(os.environ.get("INTAKE_API_FUZZ_EXAMPLES", "12"))


@pytest.fixture
def keep_the_test_connection():
    """Calls go straight to the WSGI app, whose request signals would close the database
    connection holding the test transaction (Django's test client disconnects them too)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def intake_token(db) -> str:
    """A generic connection's token, and one stored RMA so reads and refunds can succeed."""
    token = issue_intake_token(ConnectionFactory(platform="generic", platform_api_key=""))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = {"external_id": KNOWN, "order_name": "#1", "currency": "GBP", "lines": [{"sku": "A"}]}
    assert client.post("/api/intake/rmas/", body, format="json").status_code == 201
    return token


def load_schema():
    """Fetched from the app's own /api/schema/ (no database needed to serve it). Not through
    config.wsgi: that entry point refuses to start with the demo keys the tests use."""
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()

    loaded = schemathesis.openapi.from_wsgi("/api/schema/", application)
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE])
    return loaded


schema = load_schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_intake_api_conforms_to_its_schema(case, intake_token, keep_the_test_connection):
    headers = {"Authorization": f"Token {intake_token}"}
    case.call_and_validate(headers=headers, checks=CHECKS)
    if case.path_parameters:  # a generated ID is almost never stored: try the stored one too
        case.path_parameters = {**case.path_parameters, "external_id": KNOWN}
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code in (200, 201, 400), response.text


@schema.parametrize()
@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_without_a_token_every_operation_answers_401(case, keep_the_test_connection):
    response = case.call()
    assert response.status_code == 401
    case.validate_response(response, checks=CHECKS)
