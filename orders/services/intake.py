"""Order intake: the control point every order passes before physical work starts.

Structural checks belong to the caller (the API's serializer answers 400). Here the order is stored
and its business problems found: each opens an exception and holds the order (it is accepted: the
portal owns fixing it). A clean order is validated and allocated in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.db import advisory_xact_lock
from core.errors import Conflict, InvalidInput
from exceptions.services import exception_raise
from inventory.models import Location, Sku

from .. import events
from ..addresses import Address
from ..checks import line_problems, too_many_base_units
from ..errors import OrderError
from ..models import Order, OrderLine, OrderStatus, Partner, forget_loaded
from .addresses import raise_address_problems_locked
from .allocation import order_route_locked
from .locks import order_lock
from .mappings import skus_for_codes

SUSPECTED_DUPLICATE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class LineInput:
    sku_code: str
    quantity: int
    uom: str = "each"
    unit_price: Decimal = Decimal("0")


@transaction.atomic
def order_create(**fields) -> Order:
    """Store a received order and its lines (see order_store_locked) in a transaction of its own."""
    order = order_store_locked(**fields)
    # Callers keep this instance around while other services change the order: let it read afresh.
    forget_loaded(order)
    return order


def order_store_locked(*, actor: Actor, **fields) -> Order:
    """Store a received order and its lines in the caller's transaction (no lock: the order is new). Lines keep
    the SKU code as sent; the SKU and the base quantity are filled in when the code and unit are known.

    The order comes back with its lines (SKUs with them), shipments and exceptions loaded (none of
    either yet), so the services that follow read none of them again.
    """
    return order_insert_locked(order_build(**fields), actor=actor)


def order_build(
    *,
    partner: Partner,
    external_id: str,
    placed_at: datetime,
    customer_name: str,
    lines: Sequence[LineInput],
    address: Address = Address(),  # noqa: B008 - frozen, so one default serves every call
    customer_email: str = "",
    customer_tier: str = "standard",
    service_level: str = "standard",
    currency: str = "USD",
    priority: str | None = None,
    promised_ship_by: datetime | None = None,
    intake_fingerprint: str = "",
    is_test: bool = False,
    skus: dict[str, Sku] | None = None,
) -> Order:
    """A received order and its lines, checked and not yet stored (order_insert_locked stores them), with its lines
    (SKUs with them), shipments and exceptions loaded (none of either yet)."""
    if not lines:
        raise InvalidInput(
            OrderError.INVALID_ORDER, "An order needs at least one line.", fields={"lines": ["At least one line is required."]}
        )
    for number, line in enumerate(lines, start=1):
        if not isinstance(line.quantity, int) or line.quantity <= 0:
            raise InvalidInput(
                OrderError.INVALID_ORDER,
                f"Line {number}: quantity must be above zero.",
                fields={"lines": {number: ["Quantity must be above zero."]}},
            )
    order = Order(
        partner=partner,
        external_id=external_id,
        placed_at=placed_at,
        customer_name=customer_name,
        customer_email=customer_email,
        customer_tier=customer_tier,
        service_level=service_level,
        currency=currency.upper(),
        priority=priority or partner.default_priority,
        promised_ship_by=promised_ship_by,
        total_amount=sum((Decimal(line.unit_price) * line.quantity for line in lines), Decimal("0")),
        intake_fingerprint=intake_fingerprint,
        is_test=is_test,
        **address.order_fields(),
    )
    try:
        # The partner is a loaded instance: skip re-checking that it exists (one query less per order).
        order.full_clean(exclude=["status", "partner"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput(OrderError.INVALID_ORDER, "The order is not valid.", fields=exc.message_dict) from None
    # A batch reads its SKUs once for all its orders and passes them in.
    skus = skus_for_codes(partner, {line.sku_code for line in lines}) if skus is None else skus
    rows = []
    for number, line in enumerate(lines, start=1):
        sku = skus.get(line.sku_code)
        per_unit = sku.base_units_per(line.uom) if sku else None
        too_many = too_many_base_units(line.quantity, line.uom, sku, per_unit)
        if too_many:
            # Keyed like the serializer's line errors (from 0), as the partner sent the lines.
            raise InvalidInput(
                OrderError.INVALID_ORDER,
                f"Line {number}: {too_many}",
                fields={"lines": {str(number - 1): {"quantity": [too_many]}}},
            )
        rows.append(
            OrderLine(
                order=order,
                line_number=number,
                sku_code=line.sku_code,
                sku=sku,
                quantity=line.quantity,
                uom=line.uom,
                unit_price=line.unit_price,
                base_quantity=line.quantity * per_unit if per_unit else None,
            )
        )
    order.loaded_lines, order.loaded_shipments, order.loaded_exceptions = rows, [], []
    return order


def order_insert_locked(order: Order, *, actor: Actor, mark_ready: bool = False) -> Order:
    """Store an order order_build made, with its lines and its creation's event, in the caller's transaction;
    Conflict when the partner already sent its external_id.

    With `mark_ready` (its checks passed before it was stored), the order is stored ready: nobody could see it
    received, so the transition costs no UPDATE of its own, and both events go in one INSERT.
    """
    if mark_ready:
        order.mark_ready()
    try:
        with transaction.atomic():
            order.save()
    except IntegrityError:
        raise Conflict(
            OrderError.DUPLICATE_ORDER, f"Partner {order.partner.code} already sent an order {order.external_id}."
        ) from None
    OrderLine.objects.bulk_create(order.loaded_lines)
    data = {"lines": len(order.loaded_lines)}
    if mark_ready:
        events.order_created_ready(order, actor=actor, data=data)
    else:
        events.order_created(order, actor=actor, data=data)
    return order


# --- the control point ------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeReads:
    """What every order of a batch reads alike, read once for the batch: the SKUs its codes name (with the
    partner's mappings), the active routing rules and the locations."""

    skus: dict[str, Sku]
    rules: list
    locations: list[Location]


@dataclass(frozen=True)
class IntakeOutcome:
    order: Order
    created: bool  # False: the partner already sent this external_id


def _line_signature(lines) -> tuple:
    return tuple(sorted((line.sku_code.upper(), line.quantity, line.uom) for line in lines))


def _suspected_duplicate(order: Order, lines: list[OrderLine]) -> Order | None:
    """Another order of the last 24 hours, from any channel, with the same customer, address and lines (the order
    is not stored yet, so it cannot find itself).

    A cancelled one does not count: ordering again after cancelling is what customers do.
    """
    if not order.customer_email:
        return None
    since = timezone.now() - SUSPECTED_DUPLICATE_WINDOW
    same_customer_and_address = list(
        Order.objects.filter(
            customer_email__iexact=order.customer_email,
            ship_postal_code__iexact=order.ship_postal_code,
            ship_line1__iexact=order.ship_line1,
            ship_country=order.ship_country,
            created_at__gte=since,
        )
        .exclude(status=OrderStatus.CANCELLED)
        .order_by()
        .values_list("pk", flat=True)
    )
    if not same_customer_and_address:
        return None  # the usual case, answered by one narrow query
    candidates = (
        Order.objects.filter(pk__in=same_customer_and_address)
        .select_related("partner")
        .prefetch_related("lines")
        .order_by("-created_at")
    )
    mine = _line_signature(lines)
    return next((other for other in candidates if _line_signature(other.lines.all()) == mine), None)


def _customer_and_address(order: Order) -> str:
    return "|".join((order.customer_email.upper(), order.ship_postal_code.upper(), order.ship_line1.upper(), order.ship_country))


@transaction.atomic(savepoint=False)  # a failure rolls back the caller's whole request anyway
def order_intake(
    *,
    partner: Partner,
    data: dict,
    body_fingerprint: str,
    actor: Actor,
    source_system: str = "api",
    is_test: bool = False,
    reads: IntakeReads | None = None,
) -> IntakeOutcome:
    """Accept a structurally valid order body (as the API serializer cleaned it).

    A clean order leaves allocated, or backordered, or awaiting split approval; when it was simply
    allocated, the order comes back current with its lines and shipments loaded.
    """
    customer = data["customer"]
    order = order_build(
        partner=partner,
        external_id=data["external_id"],
        placed_at=data["placed_at"],
        customer_name=customer["name"],
        customer_email=customer.get("email", ""),
        customer_tier=customer.get("tier", "standard"),
        service_level=data.get("service_level", "standard"),
        currency=data["currency"],
        address=Address.from_mapping(data["shipping_address"]),
        lines=[LineInput(line["sku"], line["quantity"], line.get("uom", "each"), line["unit_price"]) for line in data["lines"]],
        intake_fingerprint=body_fingerprint,
        is_test=is_test,
        skus=reads.skus if reads else None,
    )
    # The checks run before the order is stored, so that a clean one is stored ready.
    lines = order.loaded_lines
    problems = line_problems(lines, partner)
    # Two copies of one order arriving together (a double submit, two channels at once) would otherwise each
    # look for the other before either is committed, and both pass as new.
    if order.customer_email:
        advisory_xact_lock(_customer_and_address(order))
    twin = _suspected_duplicate(order, lines)
    clean = not problems and twin is None and not Address.of(order).problems()
    try:
        order_insert_locked(order, actor=actor, mark_ready=clean)
    except Conflict as conflict:
        if conflict.code != OrderError.DUPLICATE_ORDER:
            raise
        # The partner sent this external_id before (or at this very moment, and the other request stored it first).
        existing = Order.objects.get(partner=partner, external_id=data["external_id"])
        return _resent(existing, body_fingerprint=body_fingerprint, data=data, actor=actor, source_system=source_system)
    if clean:
        if reads:
            order_route_locked(order, actor=actor, rules=reads.rules, locations=reads.locations)
        else:
            order_route_locked(order, actor=actor)
        return IntakeOutcome(order, created=True)
    forget_loaded(order)  # the exceptions below hold the order through services that read it afresh
    for problem in problems:
        exception_raise(
            code=problem.code,
            order=order,
            line=problem.line,
            actor=actor,
            source_system=source_system,
            summary=problem.summary,
            detail=problem.detail,
        )
    raise_address_problems_locked(order, actor=actor, source_system=source_system)
    if twin is not None:
        exception_raise(
            code="duplicate_order",
            order=order,
            actor=actor,
            source_system=source_system,
            summary=_twin_summary(order, twin),
            detail={
                "duplicate_of": twin.pk,
                "duplicate_of_partner": twin.partner.code,
                "duplicate_of_external_id": twin.external_id,
            },
        )
    return IntakeOutcome(order, created=True)


def _twin_summary(order: Order, twin: Order) -> str:
    # Partners read summaries of their own exceptions (GET /api/v1/exceptions/): another partner's order is
    # not named there; staff find it in the exception's detail.
    received = f"{timezone.localtime(twin.created_at):%d %b %H:%M}"
    if twin.partner_id == order.partner_id:
        return f"Same customer, address and lines as order {twin.external_id} of {received}."
    return f"Same customer, address and lines as an order from another channel, received {received}."


def _resent(existing: Order, *, body_fingerprint: str, data: dict, actor: Actor, source_system: str) -> IntakeOutcome:
    if existing.intake_fingerprint and existing.intake_fingerprint != body_fingerprint:
        # The order first, as every path that raises an exception on an order locks them (its hold takes the order).
        existing = order_lock(existing)
        exception_raise(
            code="duplicate_order",
            order=existing,
            actor=actor,
            source_system=source_system,
            summary=f"Order {existing.external_id} was sent again with a different body.",
            detail={"resent_body": json.loads(json.dumps(data, default=str))},
            dedupe_key=f"order:{existing.pk}|resent",
        )
    return IntakeOutcome(existing, created=False)
