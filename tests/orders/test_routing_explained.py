"""A location a person picked by hand is explained as their choice, not as a rule that excluded every other site."""

import pytest
from django.urls import reverse

from core.actors import Actor
from orders import routing
from orders.models import RoutingRule
from orders.services.allocation import order_reallocate_to, order_route
from orders.services.lifecycle import order_mark_ready
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, make_order, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def moved(coordinator):
    """An order the "Near only" rule backordered, then moved by a coordinator to FAR, which has the stock."""
    near, far = LocationFactory(code="NEAR"), LocationFactory(code="FAR")
    sku = SkuFactory()
    stock(far, sku, 5)
    rule = RoutingRule.objects.create(name="Near only", priority=1, allow_split=False, max_shipments=1)
    rule.ranked_locations.create(location=near, rank=1)
    rule.excluded_locations.add(far)
    order = order_mark_ready(order=make_order(lines=[(sku, 5)]), actor=TEST_ACTOR)
    order_route(order=order, actor=TEST_ACTOR)
    decision = order_reallocate_to(order=order, location=far, actor=Actor.for_user(coordinator))
    return order, decision


def test_the_decision_records_that_a_person_chose_the_site(moved):
    order, decision = moved

    assert (decision.rule_id, decision.rule_name, decision.actor) == (None, "Chosen by user:coord", "user:coord")
    assert routing.person_who_chose(decision) == "coord"
    assert {c["location"]: (c["verdict"], c["reason"]) for c in decision.candidates} == {
        "FAR": ("chosen", "fills the whole order"),
        "NEAR": ("rejected", "not chosen"),
    }
    first = order.routing_decisions.order_by("at", "id").first()
    assert routing.person_who_chose(first) is None  # the rule's own decision stays a rule's


def test_the_explanation_says_who_chose_the_site_and_that_the_others_were_not_chosen(moved):
    _, decision = moved

    assert routing.routing_explanation(decision) == [
        "Chosen by coord: FAR.",
        "FAR fills the whole order.",
        "FAR: chosen — fills the whole order.",
        "NEAR: not chosen.",
    ]


def test_the_order_page_shows_the_choice_in_words(client, coordinator, moved):
    order, _ = moved
    client.force_login(coordinator)

    body = client.get(reverse("order-detail", args=[order.pk])).content.decode()
    routing_card = body[body.index('id="routing"') :].split("</section>")[0]
    latest, earlier = routing_card.split('class="decision older"')

    assert "<li>Chosen by coord: FAR.</li>" in latest
    assert "<li>NEAR: not chosen.</li>" in latest
    assert "excluded by the rule" not in latest and "Rule “" not in latest
    # The rule's earlier decision still reads as the rule's.
    assert "<li>Rule “Near only” matched this order.</li>" in earlier
    assert "<li>FAR: ruled out — excluded by the rule.</li>" in earlier


def test_an_admin_rule_cannot_take_the_name_a_persons_choice_is_stored_under(admin_client):
    site = LocationFactory(code="ONE")
    data = {
        "name": "Chosen by user:coord",
        "priority": 5,
        "active": "on",
        "max_shipments": 1,
        "ranked_locations-TOTAL_FORMS": 1,
        "ranked_locations-INITIAL_FORMS": 0,
        "ranked_locations-MIN_NUM_FORMS": 0,
        "ranked_locations-MAX_NUM_FORMS": 1000,
        "ranked_locations-0-rank": 1,
        "ranked_locations-0-location": site.pk,
    }

    response = admin_client.post(reverse("admin:orders_routingrule_add"), data)

    assert response.status_code == 200
    assert "Names starting “Chosen by” are kept for decisions no rule made" in response.content.decode()
    assert not RoutingRule.objects.exists()
