"""No order is ever on hold with no open blocking exception: closing an exception re-checks its problem.

The defect this guards: a partner sent an order with an unknown SKU, a bad postal code and a low price;
a coordinator resolved the three exceptions without fixing anything, and the order stayed "On hold:
open blocking exception" with none open and no page offering a way on.
"""

import pytest

from core.roles import Role
from exceptions.actions import action_perform
from exceptions.models import OPEN_STATUSES, ExceptionEvent, FulfillmentException
from exceptions.services import exception_dismiss, exception_resolve
from orders.models import Order, OrderEvent, OrderLine, OrderStatus
from tests.api.conftest import ORDERS, order_body
from tests.factories import TEST_ACTOR, user_with_role

pytestmark = pytest.mark.django_db

UNKNOWN = {"sku": "NOPE-1", "quantity": 1, "uom": "each", "unit_price": "3.00"}
LOW_PRICE = {"sku": "SKU-1", "quantity": 2, "uom": "each", "unit_price": "10.00"}  # catalogue 12.50: 20% off
BAD_POSTAL_CODE = {**order_body()["shipping_address"], "postal_code": "ABCDE"}


def held_order(acme) -> Order:
    response = acme.post(ORDERS, order_body(lines=[UNKNOWN, LOW_PRICE], shipping_address=BAD_POSTAL_CODE), format="json")
    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    assert order.status == OrderStatus.ON_HOLD
    return order


def open_exceptions(order) -> dict[str, FulfillmentException]:
    return {
        e.type.code: e for e in FulfillmentException.objects.filter(order=order, status__in=OPEN_STATUSES).select_related("type")
    }


def on_hold_with_nothing_open() -> list[int]:
    """The invariant, over every order: on hold means a blocking exception is open."""
    return [
        order.pk
        for order in Order.objects.filter(status=OrderStatus.ON_HOLD)
        if not FulfillmentException.objects.filter(order=order, status__in=OPEN_STATUSES, type__blocking=True).exists()
    ]


@pytest.fixture
def ops(db):
    return user_with_role("olga", Role.OPS_ADMIN)


def test_resolving_the_three_exceptions_without_fixing_anything_is_refused_and_names_the_fixes(acme, catalogue, ops):
    order = held_order(acme)
    problems = open_exceptions(order)
    assert set(problems) == {"unknown_sku", "invalid_address", "pricing_mismatch"}

    refusals = {}
    for code, exception in problems.items():
        with pytest.raises(Exception) as refused:
            action_perform(code="resolve", exception_id=exception.pk, user=ops, data={"note": "looks fine to me"})
        refusals[code] = refused.value

    assert {code: (error.code, error.http_status) for code, error in refusals.items()} == {
        code: ("problem_remains", 409) for code in problems
    }
    assert "NOPE-1" in refusals["unknown_sku"].message and "Cancel line" in refusals["unknown_sku"].message
    assert "postal code" in refusals["invalid_address"].message and "Correct address" in refusals["invalid_address"].message
    assert "Accept the partner's price" in refusals["pricing_mismatch"].message
    assert set(refusals["pricing_mismatch"].detail["fixes"]) == {"accept_price", "cancel_line", "cancel_order"}
    assert set(open_exceptions(order)) == set(problems)  # nothing closed
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ON_HOLD
    assert on_hold_with_nothing_open() == []


def test_dismissing_or_releasing_the_hold_is_refused_too_while_the_problem_is_there(acme, catalogue, ops):
    order = held_order(acme)
    unknown = open_exceptions(order)["unknown_sku"]

    with pytest.raises(Exception) as dismissed:
        exception_dismiss(exception=unknown, reason="raised by mistake", actor=TEST_ACTOR)
    with pytest.raises(Exception) as released:
        action_perform(
            code="release_hold", exception_id=open_exceptions(order)["invalid_address"].pk, user=ops, data={"note": "ok"}
        )

    assert dismissed.value.code == released.value.code == "problem_remains"
    assert on_hold_with_nothing_open() == []


def test_fixing_each_problem_closes_its_exception_and_the_order_goes_on(acme, catalogue, ops):
    order = held_order(acme)
    problems = open_exceptions(order)
    unknown_line = OrderLine.objects.get(order=order, sku_code="NOPE-1")

    cancelled = action_perform(
        code="cancel_line",
        exception_id=problems["unknown_sku"].pk,
        user=ops,
        data={"line": unknown_line.pk, "reason": "not ours"},
    )
    corrected = action_perform(
        code="correct_address",
        exception_id=problems["invalid_address"].pk,
        user=ops,
        data={**BAD_POSTAL_CODE, "postal_code": "62701"},
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ON_HOLD  # the price still holds it
    accepted = action_perform(
        code="accept_price",
        exception_id=problems["pricing_mismatch"].pk,
        user=ops,
        data={"reason": "the partner's promotion this week", "operator_minutes": 3},
    )

    assert [r.exception.status for r in (cancelled, corrected, accepted)] == ["resolved"] * 3
    assert accepted.exception.resolution_action == "accept_price" and accepted.exception.operator_minutes == 3
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED  # off hold with the last blocking exception, and routed
    assert OrderLine.objects.get(order=order, sku_code="SKU-1").price_accepted
    event = OrderEvent.objects.get(order=order, name="accept_price")
    assert (event.actor, event.data["reason"], event.data["unit_price"]) == (
        "user:olga",
        "the partner's promotion this week",
        "10.00",
    )
    assert on_hold_with_nothing_open() == []


def test_a_price_beyond_the_partners_limit_cannot_be_accepted(acme, catalogue, ops):
    response = acme.post(
        ORDERS, order_body(lines=[{"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "5.00"}]), format="json"
    )  # 60% off the catalogue; the partner allows accepting up to 25%
    order = Order.objects.get(pk=response.json()["id"])
    pricing = open_exceptions(order)["pricing_mismatch"]
    before = ExceptionEvent.objects.filter(exception=pricing).count()

    with pytest.raises(Exception) as refused:
        action_perform(code="accept_price", exception_id=pricing.pk, user=ops, data={"reason": "promotion"})

    assert refused.value.code == "price_beyond_limit" and "25%" in refused.value.message
    assert not OrderLine.objects.get(order=order).price_accepted
    assert ExceptionEvent.objects.filter(exception=pricing).count() == before
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ON_HOLD


def test_a_problem_made_moot_closes_without_a_fix(acme, catalogue, ops):
    """Cancelling the order leaves nothing to fix: its exceptions close whatever they were about."""
    order = held_order(acme)

    action_perform(code="cancel_order", exception_id=open_exceptions(order)["unknown_sku"].pk, user=ops, data={"reason": "fraud"})

    assert open_exceptions(order) == {}
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


def test_an_exception_whose_problem_is_gone_resolves_with_a_note(acme, catalogue, ops):
    """The check asks the order as it is now: an exception raised for a problem that is not there resolves."""
    response = acme.post(ORDERS, order_body(), format="json")  # clean: allocated
    order = Order.objects.get(pk=response.json()["id"])
    from tests.factories import raise_on_order

    invalid = raise_on_order("invalid_address", order)  # the address is in fact fine

    resolved = exception_resolve(exception=invalid, note="carrier confirmed it", actor=TEST_ACTOR)

    assert resolved.status == "resolved"
