from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import InvalidInput
from core.fsm import IllegalTransition
from exceptions.models import ExceptionEvent, ExceptionType, FulfillmentException, SlaPolicy
from exceptions.services import exception_priority, exception_raise, exception_resolve
from orders.models import OrderEvent, OrderStatus
from orders.services.lifecycle import HOLD_FOR_EXCEPTIONS, order_hold, order_release_hold
from tests.factories import TEST_ACTOR, make_order, raise_on_order
from tests.threads import run_together

pytestmark = pytest.mark.django_db


def test_the_eighteen_types_are_seeded_with_a_queue_and_four_policies():
    codes = set(ExceptionType.objects.values_list("code", flat=True))
    assert codes == {
        "duplicate_order",
        "invalid_address",
        "unknown_sku",
        "uom_mismatch",
        "pricing_mismatch",
        "credit_hold",
        "address_change_after_release",
        "out_of_stock",
        "split_approval_required",
        "short_pick",
        "damaged_item",
        "stock_discrepancy",
        "label_failure",
        "carrier_service_invalid",
        "delivery_failed",
        "shipment_not_invoiced",
        "sync_failure",
        "inventory_drift",
    }
    assert not ExceptionType.objects.filter(default_queue__isnull=True).exists()
    assert SlaPolicy.objects.count() == 18 * 4


def test_raising_again_records_an_occurrence_instead_of_a_duplicate():
    order = make_order()
    first = raise_on_order("out_of_stock", order)

    again = raise_on_order("out_of_stock", order, detail={"short": 3})

    assert again.pk == first.pk
    assert FulfillmentException.objects.count() == 1
    assert again.occurrences == 2
    kinds = list(ExceptionEvent.objects.filter(exception=first).values_list("kind", flat=True))
    assert kinds == ["created", "occurred"]


def test_an_occurrence_brings_its_detail_and_its_event_keeps_the_one_it_replaced():
    order = make_order()
    first = raise_on_order("out_of_stock", order, detail={"short": 2})

    raise_on_order("out_of_stock", order, detail={"short": 5})
    raise_on_order("out_of_stock", order)  # no detail: the last one stands

    assert FulfillmentException.objects.get(pk=first.pk).detail == {"short": 5}
    occurred = list(ExceptionEvent.objects.filter(exception=first, kind="occurred").order_by("pk").values_list("data", flat=True))
    assert occurred[0] == {"occurrences": 2, "short": 5, "previous_detail": {"short": 2}}
    assert occurred[1] == {"occurrences": 3}


def test_another_line_or_type_is_another_exception_and_a_closed_one_does_not_absorb_new_raises():
    order = make_order(lines=None)
    line = order.lines.get()
    a = raise_on_order("out_of_stock", order)
    b = raise_on_order("out_of_stock", order, line=line)
    c = raise_on_order("short_pick", order, line=line)
    assert len({a.pk, b.pk, c.pk}) == 3

    exception_resolve(exception=a, note="restocked", actor=TEST_ACTOR)
    d = raise_on_order("out_of_stock", order)
    assert d.pk != a.pk and d.occurrences == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_raises_of_one_problem_open_one_exception():
    order = make_order()

    assert run_together(6, lambda _: raise_on_order("invalid_address", order)) == []
    exception = FulfillmentException.objects.get()
    assert exception.occurrences == 6
    assert ExceptionEvent.objects.filter(kind="occurred").count() == 5


@pytest.mark.parametrize(
    ("severity", "tier", "service", "value", "expected"),
    [
        ("low", "standard", "standard", 0, "P4"),
        ("medium", "standard", "standard", 0, "P3"),
        ("high", "standard", "standard", 0, "P3"),
        ("critical", "standard", "standard", 0, "P2"),
        ("high", "priority", "standard", 0, "P2"),
        ("medium", "standard", "express", 1000, "P2"),
        ("high", "strategic", "same_day", 0, "P1"),
        ("low", "standard", "same_day", 5000, "P2"),
        ("critical", "strategic", "standard", 0, "P1"),
    ],
)
def test_priority_from_severity_tier_service_and_value(severity, tier, service, value, expected):
    assert (
        exception_priority(severity=severity, customer_tier=tier, service_level=service, order_value=Decimal(value)) == expected
    )


def test_raise_takes_priority_queue_and_deadlines_from_type_and_policy():
    order = make_order(customer_tier="strategic", service_level="express")
    before = timezone.now()

    exception = raise_on_order("short_pick", order)  # high + strategic + express = 5 points

    assert exception.priority == "P1"
    assert exception.queue.slug == "warehouse"
    policy = SlaPolicy.objects.get(exception_type__code="short_pick", priority="P1")
    assert exception.sla_policy == policy
    detected = exception.detected_at
    assert before <= detected <= timezone.now()
    assert exception.due_at == detected + timedelta(minutes=policy.resolve_minutes)
    assert exception.first_response_due_at == detected + timedelta(minutes=policy.first_response_minutes)
    assert exception.warn_at == detected + timedelta(minutes=policy.resolve_minutes * policy.warning_percent / 100)


def test_a_business_calendar_counts_only_working_time():
    # credit_hold is a financial type: its seeded policies run on office hours (Mon–Fri 08–18, Amsterdam).
    friday_evening = timezone.datetime(2026, 11, 27, 16, 30, tzinfo=timezone.get_fixed_timezone(60))  # 16:30 CET
    exception = raise_on_order("credit_hold", detected_at=friday_evening)
    minutes = exception.sla_policy.resolve_minutes  # P3: 1,440 working minutes = 2.4 ten-hour days

    assert exception.sla_policy.calendar is not None
    # 90 minutes on Friday, 600 on Monday, 600 on Tuesday, the last 150 on Wednesday from 08:00 -> 10:30 CET.
    assert minutes == 1440
    assert exception.due_at == timezone.datetime(2026, 12, 2, 10, 30, tzinfo=timezone.get_fixed_timezone(60))


def test_without_a_policy_the_fallback_clock_applies():
    SlaPolicy.objects.filter(exception_type__code="damaged_item").delete()
    exception = raise_on_order("damaged_item")
    assert exception.sla_policy is None
    assert exception.due_at - exception.detected_at == timedelta(minutes=1440)


def test_a_type_without_a_default_queue_lands_in_triage():
    ExceptionType.objects.filter(code="delivery_failed").update(default_queue=None)
    assert raise_on_order("delivery_failed").queue.slug == "triage"


def test_an_unknown_type_is_refused():
    with pytest.raises(InvalidInput):
        exception_raise(code="no_such_type", summary="x", actor=TEST_ACTOR)
    assert not FulfillmentException.objects.exists()


# --- blocking exceptions and the order's hold -----------------------------------------


def test_a_blocking_exception_holds_the_order_and_releasing_it_by_hand_is_refused():
    order = make_order()
    raise_on_order("invalid_address", order)
    order.refresh_from_db()
    assert (order.status, order.hold_reason) == (OrderStatus.ON_HOLD, HOLD_FOR_EXCEPTIONS)
    hold = OrderEvent.objects.filter(order=order, name="hold").get()
    assert hold.data["type"] == "invalid_address"

    with pytest.raises(IllegalTransition) as excinfo:
        order_release_hold(order=order, actor=TEST_ACTOR)
    assert "blocking exception" in excinfo.value.message
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD


def test_a_non_blocking_exception_leaves_the_order_alone():
    order = make_order()
    raise_on_order("out_of_stock", order)
    order.refresh_from_db()
    assert order.status == OrderStatus.RECEIVED


def test_the_hold_lifts_when_the_last_blocking_exception_closes():
    order = make_order()
    address = raise_on_order("invalid_address", order)
    price = raise_on_order("pricing_mismatch", order)

    exception_resolve(exception=address, note="customer confirmed", actor=TEST_ACTOR)
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD  # the price question is still open

    exception_resolve(exception=price, note="price honoured", actor=TEST_ACTOR)
    order.refresh_from_db()
    assert OrderEvent.objects.filter(order=order, name="release_hold").count() == 1
    # ready again, it went straight to allocation; its SKU has no stock anywhere
    assert order.status == OrderStatus.BACKORDERED
    assert FulfillmentException.objects.filter(order=order, type__code="out_of_stock", status="open").exists()


def test_a_hold_put_by_a_person_is_not_lifted_by_closing_exceptions():
    from orders.services.lifecycle import order_mark_ready

    order = order_mark_ready(order=make_order(), actor=TEST_ACTOR)
    order_hold(order=order, reason="Fraud review", actor=TEST_ACTOR)
    exception = raise_on_order("credit_hold", order)

    exception_resolve(exception=exception, note="cleared", actor=TEST_ACTOR)

    order.refresh_from_db()
    assert (order.status, order.hold_reason) == (OrderStatus.ON_HOLD, "Fraud review")
