"""Replenishment on a hand-computed example, and the suggestion's life from proposed to received."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.actors import Actor
from core.fsm import IllegalTransition
from inventory.models import ReplenishmentSuggestion, StockLevel, StockMovement, SuggestionStatus
from inventory.replenishment import (
    Figures,
    suggestion_approve,
    suggestion_dismiss,
    suggestion_mark_ordered,
    suggestion_receive,
)
from orders.models import Shipment, ShipmentLine
from orders.services.replenishment import replenish
from tests.factories import LocationFactory, SkuFactory, make_order, stock

pytestmark = pytest.mark.django_db
BUYER = Actor.job("buyer")
NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
# 28 whole days before NOW's midnight: 14 days of 10 units and 14 of 14, so 12 a day.
DAILY = [10, 14] * 14


def demand(location, sku, daily, *, end=NOW):
    """One planned shipment a day at the location, carrying that day's units of the SKU (newest day last)."""
    order = make_order(lines=[(sku, 1)])
    line = order.lines.get()
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    for days_back, quantity in enumerate(reversed(daily), start=1):
        if not quantity:
            continue
        shipment = Shipment.objects.create(order=order, location=location)
        ShipmentLine.objects.create(shipment=shipment, order_line=line, quantity=quantity)
        Shipment.objects.filter(pk=shipment.pk).update(created_at=midnight - timedelta(days=days_back, hours=-9))


@pytest.fixture
def level():
    location, sku = LocationFactory(code="WH-EAST"), SkuFactory(code="MUG-1", case_pack=10)
    stock(location, sku, 60)
    StockLevel.objects.filter(location=location, sku=sku).update(lead_time_days=5, review_period_days=7)
    demand(location, sku, DAILY)
    return StockLevel.objects.get(location=location, sku=sku)


def test_the_figures_match_the_hand_computed_example(level):
    # mean 12; sample variance 28 × 2² / 27 = 4.148, sigma = 2.0367; z(95 %) = 1.6449; SS = ⌈1.6449 × 2.0367 × √5⌉ = ⌈7.49⌉ = 8
    # ROP = 12 × 5 + 8 = 68; OUT = 68 + 12 × 7 = 152; position 60 ≤ 68; quantity ⌈(152 - 60) / 10⌉ × 10 = 100
    result = replenish(days=28, now=NOW)

    level.refresh_from_db()
    assert level.demand_per_day == Decimal("12.000")
    assert level.demand_sigma == Decimal("2.037")
    assert (level.safety_stock, level.reorder_point) == (8, 68)
    suggestion = ReplenishmentSuggestion.objects.get()
    assert (suggestion.status, suggestion.quantity, suggestion.order_up_to, suggestion.position) == ("proposed", 100, 152, 60)
    assert suggestion.reason == "12 a day over 28 days, lead time 5 days, 95 %: reorder at 68, have 60"
    assert (result.levels_updated, result.suggestions_written) == (1, 1)
    assert Figures.of(DAILY, lead_time_days=5, review_period_days=7, service_level_percent=95) == Figures(
        12.0, pytest.approx(2.0367, abs=1e-4), 8, 68, 152
    )


def test_a_higher_service_level_keeps_more_safety_stock(level):
    level.sku.service_level_percent = Decimal("99.00")
    level.sku.save()
    replenish(days=28, now=NOW)
    level.refresh_from_db()
    # z(99 %) = 2.3263: SS = ⌈2.3263 × 2.0367 × 2.2361⌉ = ⌈10.59⌉ = 11
    assert (level.safety_stock, level.reorder_point) == (11, 71)


def test_no_suggestion_above_the_reorder_point_and_none_without_demand(level):
    stock(level.location, level.sku, 9)  # 69 > 68
    other = SkuFactory(code="IDLE-1")
    stock(level.location, other, 0 + 1)
    replenish(days=28, now=NOW)
    assert not ReplenishmentSuggestion.objects.exists()
    assert StockLevel.objects.get(sku=other).reorder_point == 0


def test_what_is_on_order_counts_in_the_position(level):
    replenish(days=28, now=NOW)
    suggestion_mark_ordered(suggestion=ReplenishmentSuggestion.objects.get(), quantity=100, actor=BUYER)
    replenish(days=28, now=NOW)
    (only,) = ReplenishmentSuggestion.objects.all()
    assert (only.status, only.quantity_ordered) == ("ordered", 100)  # 60 + 100 on order is above 68: nothing new


def test_a_second_run_refreshes_a_proposed_suggestion_but_leaves_an_approved_one(level):
    replenish(days=28, now=NOW)
    StockLevel.objects.filter(pk=level.pk).update(on_hand=50)  # what the next run sees
    replenish(days=28, now=NOW)
    suggestion = ReplenishmentSuggestion.objects.get()
    assert (suggestion.position, suggestion.quantity) == (50, 110)
    suggestion_approve(suggestion=suggestion, actor=BUYER)
    StockLevel.objects.filter(pk=level.pk).update(on_hand=40)
    replenish(days=28, now=NOW)
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.position, suggestion.quantity) == ("approved", 50, 110)
    assert ReplenishmentSuggestion.objects.count() == 1


def test_a_run_that_changes_no_figure_writes_nothing(level):
    replenish(days=28, now=NOW)
    before = ReplenishmentSuggestion.objects.get().updated_at
    again = replenish(days=28, now=NOW)
    assert (again.levels_updated, again.suggestions_written) == (0, 0)
    assert ReplenishmentSuggestion.objects.get().updated_at == before
    level.refresh_from_db()
    assert level.planned_at is not None


def test_a_proposed_suggestion_the_figures_no_longer_call_for_is_withdrawn(level):
    replenish(days=28, now=NOW)
    stock(level.location, level.sku, 100)  # 160 on hand: well above the reorder point of 68
    result = replenish(days=28, now=NOW)

    suggestion = ReplenishmentSuggestion.objects.get()
    assert (result.suggestions_withdrawn, suggestion.status) == (1, SuggestionStatus.DISMISSED)
    assert suggestion.note == "Withdrawn by the replenishment run: have 160, reorder at 68"
    assert list(suggestion.events.values_list("name", "from_status", "to_status", "actor")) == [
        ("withdraw", "proposed", "dismissed", "job:replenish")
    ]


def test_an_approved_suggestion_stays_when_the_figures_no_longer_call_for_it(level):
    replenish(days=28, now=NOW)
    suggestion_approve(suggestion=ReplenishmentSuggestion.objects.get(), actor=BUYER)
    stock(level.location, level.sku, 100)
    assert replenish(days=28, now=NOW).suggestions_withdrawn == 0
    assert ReplenishmentSuggestion.objects.get().status == SuggestionStatus.APPROVED


def test_demand_outside_the_window_and_on_cancelled_shipments_does_not_count(level):
    old = NOW - timedelta(days=40)
    demand(level.location, level.sku, [500], end=old)
    cancelled = Shipment.objects.filter(location=level.location).order_by("-pk").first()
    assert cancelled is not None
    replenish(days=28, now=NOW)
    level.refresh_from_db()
    assert level.demand_per_day == Decimal("12.000")


def more_levels(location, count, start):
    for number in range(start, start + count):
        sku = SkuFactory(code=f"MORE-{number}")
        stock(location, sku, 5)
        demand(location, sku, [1, 2, 3])


def test_the_run_takes_the_same_queries_for_twenty_levels_and_for_two_hundred(level, django_assert_num_queries):
    more_levels(level.location, 20, 0)
    with CaptureQueriesContext(connection) as few:
        replenish(days=28, now=NOW)
    more_levels(level.location, 180, 20)
    with django_assert_num_queries(len(few.captured_queries)):
        result = replenish(days=28, now=NOW)
    assert result.levels_updated == 180  # the 21 planned before have the same figures: not written again
    assert ReplenishmentSuggestion.objects.count() == 1  # the others have no lead time, so 5 each is plenty


# --- the suggestion's life -----------------------------------------------------------------------------


def test_approve_order_receive_writes_the_ledger(level):
    replenish(days=28, now=NOW)
    suggestion = ReplenishmentSuggestion.objects.get()
    suggestion_approve(suggestion=suggestion, actor=BUYER)
    suggestion_mark_ordered(suggestion=suggestion, quantity=120, actor=BUYER, reference="PO-7")
    received = suggestion_receive(suggestion=suggestion, actor=BUYER)

    assert (received.status, received.quantity_received) == (SuggestionStatus.RECEIVED, 120)
    assert StockLevel.objects.get(pk=level.pk).on_hand == 180
    receipt = StockMovement.objects.filter(kind="receipt").latest("id")
    assert (receipt.quantity, receipt.reference, receipt.actor) == (120, f"replenishment:{suggestion.pk}", "job:buyer")
    assert list(suggestion.events.values_list("name", "from_status", "to_status")) == [
        ("approve", "proposed", "approved"),
        ("mark_ordered", "approved", "ordered"),
        ("receive", "ordered", "received"),
    ]


def test_a_dismissal_needs_a_reason_and_a_closed_suggestion_cannot_move(level):
    replenish(days=28, now=NOW)
    suggestion = ReplenishmentSuggestion.objects.get()
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        suggestion_dismiss(suggestion=suggestion, reason="  ", actor=BUYER)
    suggestion_dismiss(suggestion=suggestion, reason="Discontinued next month", actor=BUYER)
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.note) == ("dismissed", "Discontinued next month")
    with pytest.raises(IllegalTransition):
        suggestion_approve(suggestion=suggestion, actor=BUYER)
    with pytest.raises(IllegalTransition):
        suggestion_receive(suggestion=suggestion, actor=BUYER)
    assert StockLevel.objects.get(pk=level.pk).on_hand == 60


def test_receiving_needs_a_whole_positive_quantity(level):
    replenish(days=28, now=NOW)
    suggestion = suggestion_mark_ordered(suggestion=ReplenishmentSuggestion.objects.get(), quantity=100, actor=BUYER)
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        suggestion_receive(suggestion=suggestion, quantity=0, actor=BUYER)
    assert ReplenishmentSuggestion.objects.get().status == "ordered"
    assert StockLevel.objects.get(pk=level.pk).on_hand == 60
