"""Stock use cases. Each is one transaction that moves the counters with a
conditional UPDATE and writes the ledger row that explains the move.

No service reads a counter and writes it back: the WHERE clause of the UPDATE
is the check, so concurrent callers cannot oversell whatever the interleaving.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from fulfillment.actors import Actor
from fulfillment.errors import Conflict, InvalidInput

from .errors import ADJUSTMENT_MUST_NOT_BE_ZERO, QUANTITY_MUST_BE_POSITIVE, InventoryError
from .models import StockLevel, StockMovement


class InsufficientStock(Conflict):
    def __init__(self, message: str, **detail) -> None:
        super().__init__(InventoryError.INSUFFICIENT_STOCK, message, **detail)


@dataclass(frozen=True)
class _Move:
    kind: str
    on_hand: int = 0
    reserved: int = 0
    picked: int = 0


def _require_positive(quantity: int) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise InvalidInput(InventoryError.INVALID_QUANTITY, QUANTITY_MUST_BE_POSITIVE, fields={"quantity": [QUANTITY_MUST_BE_POSITIVE]})


def _apply(
    *,
    location_id: int,
    sku_id: int,
    quantity: int,
    move: _Move,
    guard: Q,
    actor: Actor,
    reference: str,
    reason: str,
    source_system: str,
    shortage: str,
) -> StockMovement:
    """Move the counters if `guard` holds for the row, then write the ledger row.

    Must run inside the caller's transaction. Raises InsufficientStock (and
    changes nothing) when the row is missing or the guard fails.
    """
    updated = (
        StockLevel.objects.filter(location_id=location_id, sku_id=sku_id)
        .filter(guard)
        .update(
            on_hand=F("on_hand") + move.on_hand,
            reserved=F("reserved") + move.reserved,
            picked=F("picked") + move.picked,
            updated_at=timezone.now(),
        )
    )
    if updated != 1:
        level = StockLevel.objects.filter(location_id=location_id, sku_id=sku_id).select_related("location", "sku").first()
        if level is None:
            raise InsufficientStock("No stock of this SKU is kept at this location.", location_id=location_id, sku_id=sku_id)
        raise InsufficientStock(
            shortage.format(
                quantity=quantity, sku=level.sku.code, location=level.location.code,
                on_hand=level.on_hand, reserved=level.reserved, picked=level.picked, available=level.available,
            ),
            location=level.location.code, sku=level.sku.code, requested=quantity, available=level.available,
        )
    return StockMovement.objects.create(
        location_id=location_id,
        sku_id=sku_id,
        kind=move.kind,
        quantity=quantity,
        on_hand_delta=move.on_hand,
        reserved_delta=move.reserved,
        picked_delta=move.picked,
        reason=reason,
        source_system=source_system,
        reference=reference,
        actor=str(actor),
    )


def stock_level_ensure(*, location_id: int, sku_id: int) -> StockLevel:
    level, _ = StockLevel.objects.get_or_create(location_id=location_id, sku_id=sku_id)
    return level


@transaction.atomic
def stock_receive(
    *, location_id: int, sku_id: int, quantity: int, actor: Actor,
    reference: str = "", reason: str = "", source_system: str = "portal",
) -> StockMovement:
    _require_positive(quantity)
    stock_level_ensure(location_id=location_id, sku_id=sku_id)
    return _apply(
        location_id=location_id, sku_id=sku_id, quantity=quantity, move=_Move(StockMovement.Kind.RECEIPT, on_hand=quantity),
        guard=Q(), actor=actor, reference=reference, reason=reason, source_system=source_system, shortage="",
    )


@transaction.atomic
def stock_adjust(
    *, location_id: int, sku_id: int, delta: int, reason: str, actor: Actor,
    reference: str = "", source_system: str = "portal", kind: str = StockMovement.Kind.ADJUSTMENT,
) -> StockMovement:
    """Correct on_hand by `delta`; a count may not fall below what is already reserved."""
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise InvalidInput(InventoryError.INVALID_QUANTITY, ADJUSTMENT_MUST_NOT_BE_ZERO, fields={"delta": [ADJUSTMENT_MUST_NOT_BE_ZERO]})
    stock_level_ensure(location_id=location_id, sku_id=sku_id)
    return _apply(
        location_id=location_id, sku_id=sku_id, quantity=delta, move=_Move(kind, on_hand=delta),
        guard=Q(on_hand__gte=F("reserved") - delta), actor=actor, reference=reference, reason=reason,
        source_system=source_system,
        shortage="Cannot adjust {sku} at {location} by " + str(delta) + ": {on_hand} on hand, {reserved} reserved.",
    )


@transaction.atomic
def stock_set_on_hand(
    *, location_id: int, sku_id: int, on_hand: int, reason: str, actor: Actor, reference: str = "",
) -> StockMovement | None:
    """Make on_hand equal a counted figure through an adjustment; no movement when it already is."""
    if not isinstance(on_hand, int) or on_hand < 0:
        raise InvalidInput(InventoryError.INVALID_QUANTITY, "On-hand quantity must be zero or more.", fields={"on_hand": ["Must be zero or more."]})
    stock_level_ensure(location_id=location_id, sku_id=sku_id)
    level = StockLevel.objects.select_for_update().get(location_id=location_id, sku_id=sku_id)
    delta = on_hand - level.on_hand
    if delta == 0:
        return None
    return stock_adjust(location_id=location_id, sku_id=sku_id, delta=delta, reason=reason, actor=actor, reference=reference)


@transaction.atomic
def stock_reserve(*, location_id: int, sku_id: int, quantity: int, actor: Actor, reference: str = "") -> StockMovement:
    """Promise `quantity` units; one conditional UPDATE, so it cannot oversell."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id, sku_id=sku_id, quantity=quantity, move=_Move(StockMovement.Kind.RESERVATION, reserved=quantity),
        guard=Q(on_hand__gte=F("reserved") + quantity), actor=actor, reference=reference, reason="", source_system="portal",
        shortage="Cannot reserve {quantity} of {sku} at {location}: {available} available.",
    )


@transaction.atomic
def stock_release(*, location_id: int, sku_id: int, quantity: int, actor: Actor, reference: str = "", reason: str = "") -> StockMovement:
    """Give back reserved units that have not been picked."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id, sku_id=sku_id, quantity=quantity, move=_Move(StockMovement.Kind.RELEASE, reserved=-quantity),
        guard=Q(reserved__gte=F("picked") + quantity), actor=actor, reference=reference, reason=reason, source_system="portal",
        shortage="Cannot release {quantity} of {sku} at {location}: {reserved} reserved, {picked} of them picked.",
    )


@transaction.atomic
def stock_pick(*, location_id: int, sku_id: int, quantity: int, actor: Actor, reference: str = "", source_system: str = "portal") -> StockMovement:
    """Reserved units taken off the shelf; they stay on hand until they ship."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id, sku_id=sku_id, quantity=quantity, move=_Move(StockMovement.Kind.PICK, picked=quantity),
        guard=Q(reserved__gte=F("picked") + quantity), actor=actor, reference=reference, reason="", source_system=source_system,
        shortage="Cannot pick {quantity} of {sku} at {location}: {reserved} reserved, {picked} already picked.",
    )


@transaction.atomic
def stock_ship(*, location_id: int, sku_id: int, quantity: int, actor: Actor, reference: str = "", source_system: str = "portal") -> StockMovement:
    """Picked units leave the building: on hand, reserved and picked all fall."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id, sku_id=sku_id, quantity=quantity,
        move=_Move(StockMovement.Kind.SHIP, on_hand=-quantity, reserved=-quantity, picked=-quantity),
        guard=Q(picked__gte=quantity), actor=actor, reference=reference, reason="", source_system=source_system,
        shortage="Cannot ship {quantity} of {sku} at {location}: only {picked} picked.",
    )
