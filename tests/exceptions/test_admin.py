"""The admin's exception list names orders as people quote them."""

import pytest
from django.urls import reverse

from tests.factories import PartnerFactory, make_order, raise_on_order

pytestmark = pytest.mark.django_db


def test_the_exception_list_shows_the_partner_code_and_external_id_of_the_order(admin_client):
    order = make_order(partner=PartnerFactory(code="northwind-shop"), external_id="NW-11032")
    raise_on_order("invalid_address", order)

    response = admin_client.get(reverse("admin:exceptions_fulfillmentexception_changelist"))

    body = response.content.decode()
    assert response.status_code == 200
    assert "northwind-shop NW-11032" in body
    assert f"{order.partner_id}/NW-11032" not in body
