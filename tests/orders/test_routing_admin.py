"""Operations admins edit routing rules in the admin; a dry run shows the effect before saving."""

import pytest
from django.urls import reverse

from orders.models import Order, OrderStatus, RoutingRule
from orders.services.allocation import order_route
from orders.services.lifecycle import order_mark_ready
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def sites():
    east, west = LocationFactory(code="EAST"), LocationFactory(code="WEST")
    sku = SkuFactory()
    stock(east, sku, 50)
    stock(west, sku, 50)
    rule = RoutingRule.objects.create(name="US orders", priority=10, destination_countries=["US"])
    rule.ranked_locations.create(location=east, rank=1)
    rule.ranked_locations.create(location=west, rank=2)
    return {"east": east, "west": west, "sku": sku, "rule": rule}


def form_data(rule: RoutingRule, ranking: list, **overrides) -> dict:
    existing = list(rule.ranked_locations.order_by("rank"))
    data = {
        "name": rule.name,
        "priority": rule.priority,
        "active": "on",
        "destination_countries": ["US"],
        "postal_prefixes": "",
        "service_levels": [],
        "customer_tiers": [],
        "min_order_value": "",
        "max_order_value": "",
        "allow_split": "on",
        "max_shipments": rule.max_shipments,
        "preferred_carrier": "",
        "fallback_carrier": "",
        "ranked_locations-TOTAL_FORMS": len(ranking),
        "ranked_locations-INITIAL_FORMS": len(existing),
        "ranked_locations-MIN_NUM_FORMS": 0,
        "ranked_locations-MAX_NUM_FORMS": 1000,
    }
    for index, (location, rank) in enumerate(ranking):
        current = next((rl for rl in existing if rl.location_id == location.pk), None)
        data.update(
            {
                f"ranked_locations-{index}-id": current.pk if current else "",
                f"ranked_locations-{index}-rule": rule.pk,
                f"ranked_locations-{index}-rank": rank,
                f"ranked_locations-{index}-location": location.pk,
            }
        )
    data.update(overrides)
    return data


def route_new_order(sku) -> str:
    order = order_mark_ready(order=make_order(lines=[(sku, 1)]), actor=TEST_ACTOR)
    return order_route(order=order, actor=TEST_ACTOR).plan[0]["location"]


def test_an_ops_admin_reranks_locations_and_the_next_allocation_follows(client, ops_admin, sites):
    ops_admin.is_staff = True
    ops_admin.save()
    client.force_login(ops_admin)
    assert route_new_order(sites["sku"]) == "EAST"
    change = reverse("admin:orders_routingrule_change", args=[sites["rule"].pk])

    response = client.post(change, form_data(sites["rule"], [(sites["east"], 2), (sites["west"], 1)]))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert route_new_order(sites["sku"]) == "WEST"


@pytest.mark.parametrize(
    ("ranking", "overrides", "message"),
    [
        ([], {}, "A rule needs at least one location"),
        (None, {"max_shipments": 0}, "max shipments must be 1 or more"),
        (None, {"destination_countries": ["USA"]}, "USA is not an ISO 3166-1 country code"),
        (None, {"destination_countries": ["XX"]}, "XX is not an ISO 3166-1 country code"),
        (None, {"name": "Chosen by me"}, "Names starting “Chosen by” are kept"),
        (None, {"min_order_value": "50", "max_order_value": "10"}, "must not be below the smallest"),
    ],
)
def test_the_admin_form_rejects_a_rule_that_cannot_route(admin_client, sites, ranking, overrides, message):
    rule = sites["rule"]
    ranking = [(sites["east"], 1), (sites["west"], 2)] if ranking is None else ranking
    data = form_data(rule, ranking, **overrides)
    if not ranking:  # delete the existing inline rows
        data.update({"ranked_locations-TOTAL_FORMS": 2})
        for index, rl in enumerate(rule.ranked_locations.order_by("rank")):
            data.update(
                {
                    f"ranked_locations-{index}-id": rl.pk,
                    f"ranked_locations-{index}-rule": rule.pk,
                    f"ranked_locations-{index}-rank": rl.rank,
                    f"ranked_locations-{index}-location": rl.location_id,
                    f"ranked_locations-{index}-DELETE": "on",
                }
            )

    response = admin_client.post(reverse("admin:orders_routingrule_change", args=[rule.pk]), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    rule.refresh_from_db()
    assert (rule.max_shipments, rule.destination_countries, rule.ranked_locations.count()) == (2, ["US"], 2)


def test_a_dry_run_shows_what_the_edit_would_change_and_saves_nothing(admin_client, sites):
    rule = sites["rule"]
    rule.allow_split, rule.max_shipments = False, 1
    rule.save()
    backordered = order_mark_ready(order=make_order(lines=[(sites["sku"], 80)]), actor=TEST_ACTOR)  # 50 + 50 in stock
    order_route(order=backordered, actor=TEST_ACTOR)
    allocated = order_mark_ready(order=make_order(lines=[(sites["sku"], 2)]), actor=TEST_ACTOR)
    order_route(order=allocated, actor=TEST_ACTOR)
    assert Order.objects.get(pk=backordered.pk).status == OrderStatus.BACKORDERED

    data = form_data(
        rule, [(sites["east"], 2), (sites["west"], 1)], allow_split="on", max_shipments=2, _dryrun="Dry run my edits"
    )
    response = admin_client.post(reverse("admin:orders_routingrule_change", args=[rule.pk]), data)

    assert response.status_code == 200
    rows = {row.order.pk: row for row in response.context["dry_run_rows"]}
    assert (rows[backordered.pk].now, rows[backordered.pk].proposed, rows[backordered.pk].changed) == (
        "backordered",
        "split: WEST + EAST",
        True,
    )
    assert (rows[allocated.pk].now, rows[allocated.pk].proposed) == ("EAST", "WEST")
    body = response.content.decode()
    assert "Dry run of your edits (not saved): 2 of 2 orders would change" in body
    assert 'name="max_shipments" value="2"' in body  # the form still shows the edits
    rule.refresh_from_db()
    assert (rule.allow_split, rule.max_shipments) == (False, 1)
    assert dict(rule.ranked_locations.values_list("location__code", "rank")) == {"EAST": 1, "WEST": 2}
    assert Order.objects.get(pk=backordered.pk).status == OrderStatus.BACKORDERED


def test_the_saved_rule_set_can_be_dry_run_from_the_list(admin_client, sites):
    order_route(order=order_mark_ready(order=make_order(lines=[(sites["sku"], 2)]), actor=TEST_ACTOR), actor=TEST_ACTOR)

    response = admin_client.post(
        reverse("admin:orders_routingrule_changelist"), {"action": "dry_run_rule_set", "_selected_action": [sites["rule"].pk]}
    )

    assert response.status_code == 200
    assert "0 of 1 orders would change under the saved rules" in response.content.decode()


def dry_run_edit(admin_client, rule: RoutingRule, ranking: list, **overrides):
    data = form_data(rule, ranking, _dryrun="Dry run my edits", **overrides)
    response = admin_client.post(reverse("admin:orders_routingrule_change", args=[rule.pk]), data)
    assert response.status_code == 200
    return response, {row.order.pk: row for row in response.context["dry_run_rows"]}


def routed(lines) -> Order:
    order = order_mark_ready(order=make_order(lines=lines), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    return Order.objects.get(pk=order.pk)


def test_a_dry_run_does_not_count_a_backorder_that_stays_a_backorder(admin_client, sites):
    short = routed([(sites["sku"], 500)])  # 50 + 50 in stock
    assert short.status == OrderStatus.BACKORDERED

    response, rows = dry_run_edit(admin_client, sites["rule"], [(sites["east"], 2), (sites["west"], 1)])

    assert rows[short.pk].proposed.startswith("backorder")
    assert rows[short.pk].changed is False
    assert "Dry run of your edits (not saved): 0 of 1 orders would change" in response.content.decode()


def test_a_dry_run_does_not_count_the_same_sites_listed_in_another_order(admin_client, sites):
    only_east, only_west = SkuFactory(), SkuFactory()
    stock(sites["east"], only_east, 5)
    stock(sites["west"], only_west, 5)
    split = routed([(only_east, 3), (only_west, 3)])
    assert split.status == OrderStatus.ALLOCATED

    response, rows = dry_run_edit(admin_client, sites["rule"], [(sites["east"], 2), (sites["west"], 1)])

    assert (rows[split.pk].now, rows[split.pk].proposed) == ("split: EAST + WEST", "split: WEST + EAST")
    assert rows[split.pk].changed is False
    assert "0 of 1 orders would change" in response.content.decode()


def test_a_dry_run_lists_allocated_orders_and_counts_a_split_the_edit_would_send_for_approval(admin_client, sites):
    only_east, only_west = SkuFactory(), SkuFactory()
    stock(sites["east"], only_east, 5)
    stock(sites["west"], only_west, 5)
    stays = routed([(sites["sku"], 2)])
    split = routed([(only_east, 3), (only_west, 3)])
    assert {stays.status, split.status} == {OrderStatus.ALLOCATED}

    response, rows = dry_run_edit(
        admin_client, sites["rule"], [(sites["east"], 1), (sites["west"], 2)], split_requires_approval="on"
    )

    assert set(rows) == {stays.pk, split.pk}
    assert (rows[stays.pk].proposed, rows[stays.pk].changed) == ("EAST", False)
    assert (rows[split.pk].proposed, rows[split.pk].changed) == ("split: EAST + WEST (needs approval)", True)
    body = response.content.decode()
    assert "1 of 2 orders would change" in body
    assert body.count("<td>Allocated</td>") == 2


def test_a_dry_run_counts_a_plan_with_the_same_sites_but_other_quantities(admin_client, sites):
    uneven = routed([(sites["sku"], 70)])
    assert [(s.location.code, s.lines.get().quantity) for s in uneven.shipments.order_by("pk")] == [("EAST", 50), ("WEST", 20)]
    stock(sites["east"], sites["sku"], 5)  # EAST could now take 55 of the 70

    response, rows = dry_run_edit(admin_client, sites["rule"], [(sites["east"], 1), (sites["west"], 2)])

    assert (rows[uneven.pk].now, rows[uneven.pk].proposed) == ("split: EAST + WEST", "split: EAST + WEST")
    assert rows[uneven.pk].changed is True
    assert "1 of 1 orders would change" in response.content.decode()


def test_an_unknown_country_is_refused_with_its_reason_and_nothing_is_saved(admin_client, sites):
    rule = sites["rule"]
    data = form_data(rule, [(sites["east"], 1), (sites["west"], 2)], name="Renamed", destination_countries=["DE", "XX"])

    response = admin_client.post(reverse("admin:orders_routingrule_change", args=[rule.pk]), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["destination_countries"] == [
        "XX is not an ISO 3166-1 country code: use two letters such as DE, NL or US."
    ]
    rule.refresh_from_db()
    assert (rule.name, rule.destination_countries) == ("US orders", ["US"])


def test_a_valid_edit_saves_the_conditions_as_lists_that_routing_reads(admin_client, sites):
    rule = sites["rule"]
    data = form_data(
        rule,
        [(sites["east"], 1), (sites["west"], 2)],
        destination_countries=["nl", "DE"],
        postal_prefixes=" 10, m5v 3 ,,10",
        service_levels=["same_day", "express"],
        customer_tiers=["strategic"],
    )

    response = admin_client.post(reverse("admin:orders_routingrule_change", args=[rule.pk]), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.destination_countries == ["DE", "NL"]
    assert rule.postal_prefixes == ["10", "M5V3"]
    assert rule.service_levels == ["express", "same_day"]
    assert rule.customer_tiers == ["strategic"]


def test_the_change_form_offers_lists_to_pick_from(admin_client, sites):
    rule = sites["rule"]
    rule.postal_prefixes, rule.service_levels = ["10", "M5V"], ["express"]
    rule.save()

    body = admin_client.get(reverse("admin:orders_routingrule_change", args=[rule.pk])).content.decode()

    assert '<select name="destination_countries"' in body
    select = body[body.index('<select name="destination_countries"') :].split("</select>")[0]
    assert "multiple" in select.split(">")[0]
    assert '<option value="US" selected>US · United States</option>' in select
    assert '<option value="DE">DE · Germany</option>' in select
    assert 'value="XX"' not in select
    assert 'type="checkbox" name="service_levels" value="express"' in body
    assert 'type="checkbox" name="customer_tiers" value="strategic"' in body
    assert 'name="postal_prefixes" value="10, M5V"' in body


def test_a_location_cannot_be_both_preferred_and_excluded(admin_client, sites):
    rule = sites["rule"]
    data = form_data(rule, [(sites["east"], 1), (sites["west"], 2)], excluded_locations=[sites["west"].pk])

    response = admin_client.post(reverse("admin:orders_routingrule_change", args=[rule.pk]), data)

    assert response.status_code == 200
    assert "WEST cannot be both preferred and excluded" in response.content.decode()
    assert not rule.excluded_locations.exists()
