from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory, order_in_state

pytestmark = pytest.mark.django_db
APPS = ["inventory", "exceptions", "orders"]


def project_models():
    return [model for label in APPS for model in apps.get_app_config(label).get_models()]


def edited_inline(model) -> bool:
    return any(model in [inline.model for inline in model_admin.inlines] for model_admin in admin.site._registry.values())


def test_every_model_is_in_the_admin():
    assert [m for m in project_models() if m not in admin.site._registry and not edited_inline(m)] == []


@pytest.mark.parametrize("model", [m for m in project_models() if m in admin.site._registry], ids=lambda m: m._meta.label)
def test_every_changelist_lists_searches_and_opens_a_row(client, model):
    from orders.models import RoutingRule
    from orders.services.allocation import order_route
    from orders.services.lifecycle import order_mark_ready
    from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, stock

    order_in_state("released")  # gives every table rows to show
    rule = RoutingRule.objects.create(name="WH first", priority=1)
    site, sku = LocationFactory(), SkuFactory()
    rule.ranked_locations.create(location=site, rank=1)
    stock(site, sku, 5)
    order_route(order=order_mark_ready(order=make_order(lines=[(sku, 1)]), actor=TEST_ACTOR), actor=TEST_ACTOR)
    from core.models import BusinessCalendar, Holiday
    from exceptions.models import Presence
    from exceptions.services import exception_raise

    exception_raise(code="short_pick", summary="short", actor=TEST_ACTOR, location=site, sku=sku)
    away = UserFactory(username="away")
    Presence.objects.create(user=away, away=True)
    from exceptions.models import SavedView
    from orders.models import PartnerSkuMapping

    SavedView.objects.create(user=away, name="Mine", query="tab=mine")
    Holiday.objects.create(calendar=BusinessCalendar.objects.first(), date="2026-12-25", name="Christmas")
    from orders.models import IdempotencyKey, Partner

    IdempotencyKey.objects.create(partner=Partner.objects.first(), key="k", fingerprint="f", status_code=201, response=b"{}")
    PartnerSkuMapping.objects.create(partner=Partner.objects.first(), partner_sku_code="THEIRS-1", sku=sku)
    from integrations.services.availability import availability_publish
    from integrations.services.systems import system_ensure
    from inventory.models import StockLevel
    from orders.services.replenishment import replenish

    system_ensure(slug="web", kind="storefront", adapter="generic_storefront", partner=Partner.objects.first().code,
                  base_url="http://127.0.0.1:9/")  # fmt: skip
    availability_publish()
    StockLevel.objects.update(lead_time_days=5)
    replenish(days=1, now=timezone.now() + timedelta(days=1))  # today's orders as a finished day of demand
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    assert client.get(url).status_code == 200
    if admin.site._registry[model].search_fields:
        assert client.get(url, {"q": "WH"}).status_code == 200
    obj = model.objects.first()
    assert client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])).status_code == 200


def test_the_ledger_and_the_audit_trail_cannot_be_edited_in_the_admin(client):
    from inventory.models import StockMovement
    from orders.models import OrderEvent

    order_in_state("allocated")
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    for model in (StockMovement, OrderEvent):
        obj = model.objects.first()
        opts = model._meta
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert client.post(change, {}).status_code == 403
        assert (
            client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk]), {"post": "yes"}).status_code
            == 403
        )
        assert model.objects.filter(pk=obj.pk).exists()
