"""With DEBUG on (`make run`), errors reach people as they do in production: JSON under /api/, in place on pages."""

import logging

import pytest
from django.http import Http404
from django.urls import path
from rest_framework.test import APIClient

from orders.services.partners import partner_ensure

pytestmark = pytest.mark.django_db


def plain_view_that_finds_nothing(request):
    raise Http404("no such thing")


def page_that_breaks(request):
    raise RuntimeError("the page broke")


# For the tests marked with this module as their URLconf: plain Django views, where DRF's own handler does not reach.
urlpatterns = [path("api/v1/plain/", plain_view_that_finds_nothing), path("broken-page/", page_that_breaks)]
handler404 = "fulfillment.views.not_found"
handler500 = "fulfillment.views.server_error"


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


@pytest.fixture
def acme(db):
    _, token, _ = partner_ensure(code="acme", name="Acme")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def error(response) -> dict:
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"]), body
    return body["error"]


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/shipments/abc/events/", "/api/v2/orders/"])
def test_an_api_path_that_names_nothing_is_json_under_debug(debug, acme, method, path):
    response = getattr(acme, method)(path)

    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_an_api_path_without_its_slash_still_names_the_right_path_under_debug(debug, acme):
    response = acme.post("/api/v1/orders", {}, format="json")

    assert response.status_code == 404
    assert error(response)["message"].endswith("the API's paths end with a slash: /api/v1/orders/")


def test_an_unexpected_failure_in_an_api_view_is_json_and_logged_under_debug(debug, acme, monkeypatch, caplog):
    from orders import api

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(api, "order_queryset", broken)
    acme.raise_request_exception = False

    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = acme.get("/api/v1/orders/")

    assert response.status_code == 500
    assert error(response)["code"] == "server_error"
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Internal Server Error: /api/v1/orders/"
    assert record.exc_info[0] is RuntimeError  # with its traceback


def test_an_unexpected_failure_under_debug_still_reaches_the_test_client(debug, acme, monkeypatch):
    """As with DEBUG off: got_request_exception is sent, so whatever listens to it (the test client here) hears it."""
    from orders import api

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(api, "order_queryset", broken)

    with pytest.raises(RuntimeError, match="the database went away"):
        acme.get("/api/v1/orders/")


def test_api_errors_of_the_api_itself_keep_their_code_under_debug(debug, acme):
    response = acme.get("/api/v1/orders/999999/")

    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


@pytest.mark.urls(__name__)
def test_a_plain_view_under_the_api_that_finds_nothing_is_json_under_debug(debug, client):
    response = client.get("/api/v1/plain/")

    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


@pytest.mark.urls(__name__)
def test_a_page_that_breaks_keeps_django_s_debug_page(debug, client):
    client.raise_request_exception = False

    response = client.get("/broken-page/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"the page broke" in response.content  # the traceback a developer wants under DEBUG


def test_pages_keep_django_s_debug_page_for_a_path_that_names_nothing(debug, client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Using the URLconf defined in" in response.content  # the page a developer wants under DEBUG


def test_pages_load_htmx_without_the_debug_script_that_swaps_the_whole_page(debug, client, coordinator):
    client.force_login(coordinator)

    page = client.get("/queues/").content.decode()

    assert "django_htmx/htmx-2.min.js" in page
    assert "django-htmx.js" not in page
