"""Order intake: the control point every order passes before physical work starts.

Structural checks belong to the caller (the API's serializer answers 400). Here
the order is stored and its business problems found: each opens an exception
and holds the order (it is accepted: the portal owns fixing it). A clean order
is validated and allocated in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from exceptions.services import exception_raise
from fulfillment.actors import Actor
from fulfillment.errors import Conflict

from . import events
from .allocation import order_route_locked
from .errors import OrderError
from .models import IdempotencyKey, Order, OrderLine, OrderStatus, Partner, forget_related
from .services import (
    Address,
    LineInput,
    address_problems_of,
    order_lock,
    order_mark_ready_locked,
    order_store,
    raise_address_problems,
)

SUSPECTED_DUPLICATE_WINDOW = timedelta(hours=24)
IDEMPOTENCY_TTL = timedelta(hours=24)
# How long a request waits for another one holding the same Idempotency-Key before answering 409.
IDEMPOTENCY_WAIT = "250ms"


def fingerprint(payload) -> str:
    """The same order body gives the same fingerprint whatever its key order or spacing."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IntakeOutcome:
    order: Order
    created: bool  # False: the partner already sent this external_id


def _line_problems(lines: list[OrderLine], partner: Partner) -> list[dict]:
    problems = []
    for line in lines:
        if line.sku is None:
            problems.append(
                {
                    "code": "unknown_sku",
                    "line": line,
                    "summary": f"Line {line.line_number}: SKU {line.sku_code!r} is not in the catalogue.",
                }
            )
        elif line.base_quantity is None:
            problems.append(
                {
                    "code": "uom_mismatch",
                    "line": line,
                    "summary": (
                        f"Line {line.line_number}: {line.uom!r} does not convert to {line.sku.code}'s unit "
                        f"({line.sku.base_uom}; a case holds {line.sku.case_pack})."
                    ),
                }
            )
        elif line.sku.unit_price:
            catalogue = line.sku.unit_price * (line.base_quantity // line.quantity)
            gap = abs(line.unit_price - catalogue) / catalogue * 100
            if gap > partner.price_tolerance_percent:
                problems.append(
                    {
                        "code": "pricing_mismatch",
                        "line": line,
                        "summary": (
                            f"Line {line.line_number}: unit price {line.unit_price} is {gap:.0f}% "
                            f"off the catalogue's {catalogue:.2f}."
                        ),
                        "detail": {
                            "sent": str(line.unit_price),
                            "catalogue": str(catalogue),
                            "tolerance_percent": str(partner.price_tolerance_percent),
                        },
                    }
                )
    return problems


def _line_signature(lines) -> tuple:
    return tuple(sorted((line.sku_code.upper(), line.quantity, line.uom) for line in lines))


def suspected_duplicate(order: Order, lines: list[OrderLine]) -> Order | None:
    """Another order of the last 24 hours, from any channel, with the same customer, address and lines.

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
        .exclude(pk=order.pk)
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


def _one_at_a_time_per_customer_and_address(order: Order) -> None:
    """Make intakes of the same customer and address wait for each other (until this transaction ends).

    Two copies of one order arriving together (a double submit, two channels at once) would
    otherwise each look for the other before either is committed, and both pass as new.
    PostgreSQL only: SQLite already lets one writing transaction run at a time.
    """
    if not order.customer_email or connection.vendor != "postgresql":
        return
    identity = "|".join(
        (order.customer_email.upper(), order.ship_postal_code.upper(), order.ship_line1.upper(), order.ship_country)
    )
    lock_id = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


@transaction.atomic(savepoint=False)  # a failure rolls back the caller's whole request anyway
def order_intake(*, partner: Partner, data: dict, body_fingerprint: str, actor: Actor) -> IntakeOutcome:
    """Accept a structurally valid order body (as the API serializer cleaned it).

    A clean order leaves allocated, or backordered, or awaiting split approval; when it
    was simply allocated, the order comes back current with its lines and shipments loaded.
    The order's events are written together at the end.
    """
    with events.batched():
        return _intake(partner=partner, data=data, body_fingerprint=body_fingerprint, actor=actor)


def _intake(*, partner: Partner, data: dict, body_fingerprint: str, actor: Actor) -> IntakeOutcome:
    address, customer = data["shipping_address"], data["customer"]
    try:
        order, lines = order_store(
            partner=partner,
            external_id=data["external_id"],
            placed_at=data["placed_at"],
            actor=actor,
            customer_name=customer["name"],
            customer_email=customer.get("email", ""),
            customer_tier=customer.get("tier", "standard"),
            service_level=data.get("service_level", "standard"),
            currency=data["currency"],
            address=Address(
                **{k: address.get(k, "") for k in ("name", "line1", "line2", "city", "region", "postal_code", "country")}
            ),
            lines=[
                LineInput(line["sku"], line["quantity"], line.get("uom", "each"), line["unit_price"]) for line in data["lines"]
            ],
            intake_fingerprint=body_fingerprint,
        )
    except Conflict as conflict:
        if conflict.code != OrderError.DUPLICATE_ORDER:
            raise
        # The partner sent this external_id before (or at this very moment, and the other request stored it first).
        return _resent(
            Order.objects.get(partner=partner, external_id=data["external_id"]),
            body_fingerprint=body_fingerprint,
            data=data,
            actor=actor,
        )
    problems = _line_problems(lines, partner)
    _one_at_a_time_per_customer_and_address(order)
    twin = suspected_duplicate(order, lines)
    if not problems and twin is None and not address_problems_of(order):
        order_mark_ready_locked(order, actor=actor)  # stored in this transaction: nobody else can see it yet
        order_route_locked(order, actor=actor)
        return IntakeOutcome(order, created=True)
    forget_related(order)  # the exceptions below hold the order through services that read it afresh
    for problem in problems:
        exception_raise(
            code=problem["code"],
            order=order,
            line=problem["line"],
            actor=actor,
            source_system="api",
            summary=problem["summary"],
            detail=problem.get("detail", {}),
        )
    raise_address_problems(order, actor=actor, source_system="api")
    if twin is not None:
        exception_raise(
            code="duplicate_order",
            order=order,
            actor=actor,
            source_system="api",
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


def _resent(existing: Order, *, body_fingerprint: str, data: dict, actor: Actor) -> IntakeOutcome:
    if existing.intake_fingerprint and existing.intake_fingerprint != body_fingerprint:
        # The order first, as every path that raises an exception on an order locks them (its hold takes the order).
        existing = order_lock(existing)
        exception_raise(
            code="duplicate_order",
            order=existing,
            actor=actor,
            source_system="api",
            summary=f"Order {existing.external_id} was sent again with a different body.",
            detail={"resent_body": json.loads(json.dumps(data, default=str))},
            dedupe_key=f"order:{existing.pk}|resent",
        )
    return IntakeOutcome(existing, created=False)


# --- idempotency keys ------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict


class KeyReused(Conflict):
    http_status = 422


class KeyInFlight(Conflict):
    http_status = 409


def _in_flight() -> KeyInFlight:
    return KeyInFlight("request_in_progress", "A request with this Idempotency-Key is still being processed; retry in a moment.")


def idempotency_claim(*, partner: Partner, key: str, body_fingerprint: str) -> IdempotencyKey | Replay:
    """Inside the caller's transaction: claim `key`, or return the answer it already got.

    The claim is an INSERT against a unique constraint, so two requests cannot both
    hold a key: the second waits for the first to commit (then replays its answer)
    or, when the first is still working after a moment, gets 409. A new key (the
    usual case) costs that INSERT alone.
    """
    stored = None
    for _ in range(2):
        try:
            return _insert_key(partner=partner, key=key, body_fingerprint=body_fingerprint)
        except IntegrityError:
            stored = IdempotencyKey.objects.select_for_update().filter(partner=partner, key=key).first()
        if stored is not None:
            break
        # The row we collided with was gone by the time we read it: another request took over the
        # expired key and its new row came after our statement's snapshot. Claim again: that row now answers.
    if stored is None:
        raise _in_flight()
    if stored.created_at < timezone.now() - IDEMPOTENCY_TTL:
        # Older than a day (the hourly prune usually got there first): the key is free again.
        stored.delete()
        return _insert_key(partner=partner, key=key, body_fingerprint=body_fingerprint)
    if stored.fingerprint != body_fingerprint:
        raise KeyReused(
            "idempotency_key_reused", "This Idempotency-Key was used with a different body; use a new key for a new request."
        )
    return Replay(stored.status_code, stored.response_body)


def _insert_key(*, partner: Partner, key: str, body_fingerprint: str) -> IdempotencyKey:
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{IDEMPOTENCY_WAIT}'")
            claimed = IdempotencyKey.objects.create(partner=partner, key=key, fingerprint=body_fingerprint)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = 0")
            return claimed
    except OperationalError:
        raise _in_flight() from None


def idempotency_record(claimed: IdempotencyKey, *, status_code: int, body: dict) -> None:
    IdempotencyKey.objects.filter(pk=claimed.pk).update(status_code=status_code, response_body=body)


def idempotency_prune() -> int:
    """Forget keys older than a day (Celery beat, hourly)."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()
    return deleted
