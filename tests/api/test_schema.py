"""The OpenAPI schema and the docs browser, and schemathesis against the running API."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from fulfillment.wsgi import application
from orders.services.partners import partner_ensure
from tests.factories import LocationFactory, SkuFactory, stock

pytestmark = pytest.mark.django_db


def test_the_schema_and_the_offline_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/orders/",
        "/api/v1/orders/{id}/",
        "/api/v1/orders/{id}/cancel/",
        "/api/v1/orders/{id}/shipping-address/",
        "/api/v1/inventory/availability/",
        "/api/v1/shipments/{id}/events/",
        "/api/v1/exceptions/",
    } <= set(paths)
    create = paths["/api/v1/orders/"]["post"]
    example = create["requestBody"]["content"]["application/json"]["examples"]
    assert next(iter(example.values()))["value"]["external_id"] == "1001"
    assert {"201", "400", "409", "422", "429"} <= set(create["responses"])

    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page and "cdn" not in page.lower()  # served from our own static files
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200


@pytest.fixture
def api_schema():
    # Called straight through WSGI, Django would close the test's connection after each request
    # (as it does between real requests); keep it open for the test transaction, as its test client does.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# No 5xx, and every answer as the schema says: status code, content type, headers and body.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def token(db):
    site = LocationFactory(code="WH-EAST")
    for code in ("SKU-1", "string", "a"):
        stock(site, SkuFactory(code=code), 1000)
    _, key, _ = partner_ensure(code="fuzz", name="Fuzz")
    return key


def test_every_operation_conforms_and_never_answers_5xx(api_schema, token):
    """A bounded schemathesis run: generated requests to every operation, every answer checked
    against the schema (status code, content type, body) and for server errors."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def conforms(case):
            case.headers = {**(case.headers or {}), "Authorization": f"Token {token}"}
            case.call_and_validate(checks=CHECKS)

        conforms()
