"""A body framed by Transfer-Encoding (chunked) instead of Content-Length is refused with 411, never read as empty."""

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from orders.models import Order
from orders.services.partners import partner_ensure
from tests.api.conftest import ORDERS, order_body
from tests.factories import LocationFactory, SkuFactory, stock


def chunked(body: bytes, size: int = 100) -> bytes:
    chunks = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def exchange(live_server, request: bytes) -> bytes:
    """Everything the server sends back on one connection, until it closes it."""
    address = urlsplit(live_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while data := connection.recv(65536):
            received += data
    return received


@pytest.fixture
def partner_token(db):
    stock(LocationFactory(code="WH-EAST"), SkuFactory(code="SKU-1", unit_price="12.50"), 100)
    _, token, _ = partner_ensure(code="acme", name="Acme")
    return token


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunked_order_over_a_real_socket_is_411_and_the_same_order_with_its_length_is_created(live_server, partner_token):
    body = json.dumps(order_body(external_id="chunked-1")).encode()
    head = (
        f"POST {ORDERS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Token {partner_token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    received = exchange(live_server, head.encode() + chunked(body))

    # One answer, then the connection closed: the chunks were not read as a request of their own.
    headers, _, answer = received.partition(b"\r\n\r\n")
    status_line, *header_lines = headers.decode().split("\r\n")
    assert status_line == "HTTP/1.1 411 Length Required"
    assert "Content-Type: application/json" in header_lines
    assert "Connection: close" in header_lines
    assert json.loads(answer)["error"]["code"] == "length_required"
    assert not Order.objects.exists()

    address = urlsplit(live_server.url)
    with_length = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    token_and_type = {"Authorization": f"Token {partner_token}", "Content-Type": "application/json"}
    with_length.request("POST", ORDERS, body=body, headers=token_and_type)
    created = with_length.getresponse()
    assert created.status == 201, created.read()
    with_length.close()
    assert Order.objects.get().external_id == "chunked-1"


def test_a_chunked_api_request_is_411_before_authentication(client):
    response = client.post(ORDERS, b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert response.json() == {
        "error": {
            "code": "length_required",
            "message": "Send the body with a Content-Length header and no Transfer-Encoding; a chunked body is not accepted.",
            "fields": {},
        }
    }


def test_a_content_length_beside_transfer_encoding_is_refused_too(client):
    # HTTP frames such a body by Transfer-Encoding alone; Django would read Content-Length bytes of chunk framing.
    framed = b'8\r\n{"a": 1}\r\n0\r\n\r\n'
    response = client.post(ORDERS, framed, content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"


def test_a_chunked_form_post_to_a_page_is_411_in_plain_text(client):
    form = "application/x-www-form-urlencoded"
    response = client.post("/accounts/login/", b"", content_type=form, HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert response["Content-Type"].startswith("text/plain")
