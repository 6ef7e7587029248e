"""The queue's filters a dashboard figure links with: closed ones on request, the period, age, SLA, site."""

from datetime import timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone

from exceptions import selectors
from exceptions.services import exception_raise
from orders.models import Shipment
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, raise_on_order

pytestmark = pytest.mark.django_db


def listed(query: str) -> set[int]:
    filterset = selectors.exception_list(user=None, tab="team", queue_ids=None, params=QueryDict(query))
    return set(filterset.qs.values_list("pk", flat=True))


def set_fields(exception, **fields) -> None:
    type(exception).objects.filter(pk=exception.pk).update(**fields)


@pytest.fixture
def open_and_closed():
    now = timezone.now()
    opened = raise_on_order("out_of_stock")
    resolved = raise_on_order("short_pick")
    set_fields(resolved, status="resolved", resolved_at=now)
    dismissed = raise_on_order("short_pick")
    set_fields(dismissed, status="dismissed", resolved_at=now)
    return opened, resolved, dismissed


def test_open_only_unless_closed_ones_are_asked_for(open_and_closed):
    opened, resolved, dismissed = open_and_closed
    assert listed("") == {opened.pk}
    assert listed("state=all") == {opened.pk, resolved.pk, dismissed.pk}
    assert listed("state=closed") == {resolved.pk, dismissed.pk}
    assert listed("status=resolved") == {resolved.pk}


def test_a_bad_value_shows_open_ones_never_closed_ones(open_and_closed):
    opened, *_ = open_and_closed
    assert listed("state=everything") == {opened.pk}
    assert listed("status=nonsense&created_from=yesterday") == {opened.pk}


def test_created_in_a_period_through_the_whole_last_day():
    today = timezone.localdate()
    inside, before = raise_on_order("out_of_stock"), raise_on_order("out_of_stock")
    set_fields(before, created_at=timezone.now() - timedelta(days=40))
    query = f"state=all&created_from={(today - timedelta(days=29)).isoformat()}&created_to={today.isoformat()}"
    assert listed(query) == {inside.pk}


def test_age_band_sla_and_response():
    now = timezone.now()
    young, old = raise_on_order("out_of_stock"), raise_on_order("out_of_stock")
    set_fields(young, detected_at=now - timedelta(hours=1), warned_at=now, first_response_at=now)
    set_fields(old, detected_at=now - timedelta(days=4), due_at=now - timedelta(hours=2))
    assert listed("age=under_4h") == {young.pk}
    assert listed("age=over_3d") == {old.pk}
    assert listed("age=1d_3d") == set()
    assert listed("sla=warned") == {young.pk}
    assert listed("sla=breached") == {old.pk}
    assert listed("responded=yes") == {young.pk}
    assert listed("responded=no") == {old.pk}


def test_sku_and_partner_match_exactly_whatever_the_case():
    sku = SkuFactory(code="SKU-RED")
    on_sku = exception_raise(code="stock_discrepancy", summary="count", location=LocationFactory(), sku=sku, actor=TEST_ACTOR)
    order = make_order()
    on_order = raise_on_order("out_of_stock", order)
    assert listed("sku=sku-red") == {on_sku.pk}
    assert listed(f"partner={order.partner.code.upper()}") == {on_order.pk}


def test_a_site_is_where_it_is_its_shipment_leaves_from_or_its_order_ships_from():
    site, elsewhere = LocationFactory(code="NORTH"), LocationFactory(code="SOUTH")
    at_site = exception_raise(code="stock_discrepancy", summary="count", location=site, actor=TEST_ACTOR)
    order = make_order()
    Shipment.objects.create(order=order, location=site)
    on_order_shipping_from_site = raise_on_order("out_of_stock", order)
    raise_on_order("out_of_stock")  # an order with no shipment
    exception_raise(code="stock_discrepancy", summary="count", location=elsewhere, actor=TEST_ACTOR)
    assert listed(f"location={site.pk}") == {at_site.pk, on_order_shipping_from_site.pk}
