"""Stock use cases. Each is one transaction that moves the counters with a
conditional UPDATE and writes the ledger row that explains the move.

No service reads a counter and writes it back: the WHERE clause of the UPDATE
is the check, so concurrent callers cannot oversell whatever the interleaving.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.actors import Actor
from core.errors import Conflict, InvalidInput

from . import listeners
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
        raise InvalidInput(
            InventoryError.INVALID_QUANTITY, QUANTITY_MUST_BE_POSITIVE, fields={"quantity": [QUANTITY_MUST_BE_POSITIVE]}
        )


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
                quantity=quantity,
                sku=level.sku.code,
                location=level.location.code,
                on_hand=level.on_hand,
                reserved=level.reserved,
                picked=level.picked,
                available=level.available,
            ),
            location=level.location.code,
            sku=level.sku.code,
            requested=quantity,
            available=level.available,
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
    *,
    location_id: int,
    sku_id: int,
    quantity: int,
    actor: Actor,
    reference: str = "",
    reason: str = "",
    source_system: str = "portal",
) -> StockMovement:
    _require_positive(quantity)
    stock_level_ensure(location_id=location_id, sku_id=sku_id)
    movement = _apply(
        location_id=location_id,
        sku_id=sku_id,
        quantity=quantity,
        move=_Move(StockMovement.Kind.RECEIPT, on_hand=quantity),
        guard=Q(),
        actor=actor,
        reference=reference,
        reason=reason,
        source_system=source_system,
        shortage="",
    )
    listeners.stock_raised(location_id=location_id, sku_id=sku_id, actor=actor)
    return movement


@transaction.atomic
def stock_adjust(
    *,
    location_id: int,
    sku_id: int,
    delta: int,
    reason: str,
    actor: Actor,
    reference: str = "",
    source_system: str = "portal",
    kind: str = StockMovement.Kind.ADJUSTMENT,
) -> StockMovement:
    """Correct on_hand by `delta`; a count may not fall below what is already reserved."""
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise InvalidInput(
            InventoryError.INVALID_QUANTITY, ADJUSTMENT_MUST_NOT_BE_ZERO, fields={"delta": [ADJUSTMENT_MUST_NOT_BE_ZERO]}
        )
    stock_level_ensure(location_id=location_id, sku_id=sku_id)
    movement = _apply(
        location_id=location_id,
        sku_id=sku_id,
        quantity=delta,
        move=_Move(kind, on_hand=delta),
        guard=Q(on_hand__gte=F("reserved") - delta),
        actor=actor,
        reference=reference,
        reason=reason,
        source_system=source_system,
        shortage="Cannot adjust {sku} at {location} by " + str(delta) + ": {on_hand} on hand, {reserved} reserved.",
    )
    if delta > 0:
        listeners.stock_raised(location_id=location_id, sku_id=sku_id, actor=actor)
    return movement


@transaction.atomic
def stock_set_on_hand(
    *,
    location_id: int,
    sku_id: int,
    on_hand: int,
    reason: str,
    actor: Actor,
    reference: str = "",
) -> StockMovement | None:
    """Make on_hand equal a counted figure through an adjustment; no movement when it already is."""
    if not isinstance(on_hand, int) or on_hand < 0:
        raise InvalidInput(
            InventoryError.INVALID_QUANTITY,
            "On-hand quantity must be zero or more.",
            fields={"on_hand": ["Must be zero or more."]},
        )
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
        location_id=location_id,
        sku_id=sku_id,
        quantity=quantity,
        move=_Move(StockMovement.Kind.RESERVATION, reserved=quantity),
        guard=Q(on_hand__gte=F("reserved") + quantity),
        actor=actor,
        reference=reference,
        reason="",
        source_system="portal",
        shortage="Cannot reserve {quantity} of {sku} at {location}: {available} available.",
    )


@transaction.atomic
def stock_release(
    *, location_id: int, sku_id: int, quantity: int, actor: Actor, reference: str = "", reason: str = ""
) -> StockMovement:
    """Give back reserved units that have not been picked."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id,
        sku_id=sku_id,
        quantity=quantity,
        move=_Move(StockMovement.Kind.RELEASE, reserved=-quantity),
        guard=Q(reserved__gte=F("picked") + quantity),
        actor=actor,
        reference=reference,
        reason=reason,
        source_system="portal",
        shortage="Cannot release {quantity} of {sku} at {location}: {reserved} reserved, {picked} of them picked.",
    )


@transaction.atomic
def stock_pick(
    *, location_id: int, sku_id: int, quantity: int, actor: Actor, reference: str = "", source_system: str = "portal"
) -> StockMovement:
    """Reserved units taken off the shelf; they stay on hand until they ship."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id,
        sku_id=sku_id,
        quantity=quantity,
        move=_Move(StockMovement.Kind.PICK, picked=quantity),
        guard=Q(reserved__gte=F("picked") + quantity),
        actor=actor,
        reference=reference,
        reason="",
        source_system=source_system,
        shortage="Cannot pick {quantity} of {sku} at {location}: {reserved} reserved, {picked} already picked.",
    )


@transaction.atomic
def stock_ship(
    *, location_id: int, sku_id: int, quantity: int, actor: Actor, reference: str = "", source_system: str = "portal"
) -> StockMovement:
    """Picked units leave the building: on hand, reserved and picked all fall."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id,
        sku_id=sku_id,
        quantity=quantity,
        move=_Move(StockMovement.Kind.SHIP, on_hand=-quantity, reserved=-quantity, picked=-quantity),
        guard=Q(picked__gte=quantity),
        actor=actor,
        reference=reference,
        reason="",
        source_system=source_system,
        shortage="Cannot ship {quantity} of {sku} at {location}: only {picked} picked.",
    )


def stock_reserve_many(*, items: Sequence[tuple[int, int, int]], actor: Actor, reference: str = "") -> None:
    """Reserve (location_id, sku_id, quantity) items in one statement: all of them, or none and InsufficientStock.

    The statement locks the stock levels (in location and SKU order, as every path that changes
    several does, so two of them cannot deadlock), checks
    every one on its latest committed values, raises the reservations and writes their ledger
    rows. Nothing is written when one falls short, but the rows stay locked until the
    transaction ends: a caller that goes on to reserve elsewhere rolls back to a savepoint
    first. The number of queries does not grow with the number of items.
    """
    wanted: dict[tuple[int, int], int] = defaultdict(int)
    for location_id, sku_id, quantity in items:
        _require_positive(quantity)
        wanted[(location_id, sku_id)] += quantity
    if not wanted:
        return
    if connection.vendor != "postgresql":
        return _reserve_many_checked_first(wanted, actor=actor, reference=reference)
    levels = connection.ops.quote_name(StockLevel._meta.db_table)
    ledger = connection.ops.quote_name(StockMovement._meta.db_table)
    values = ", ".join(["(CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS INTEGER))"] * len(wanted))
    now = timezone.now()
    sql = (
        f"WITH wanted(location_id, sku_id, quantity) AS (VALUES {values}), "
        f"locked AS (SELECT level.id, level.location_id, level.sku_id, level.on_hand, level.reserved, wanted.quantity "
        f"  FROM {levels} level JOIN wanted ON level.location_id = wanted.location_id AND level.sku_id = wanted.sku_id "
        f"  ORDER BY level.location_id, level.sku_id FOR UPDATE OF level), "
        f"enough AS (SELECT count(*) = %s AND coalesce(bool_and(on_hand - reserved >= quantity), false) AS ok FROM locked), "
        f"raised AS (UPDATE {levels} SET reserved = {levels}.reserved + locked.quantity, updated_at = %s "
        f"  FROM locked, enough WHERE {levels}.id = locked.id AND enough.ok "
        f"  RETURNING {levels}.location_id, {levels}.sku_id, locked.quantity), "
        f"written AS (INSERT INTO {ledger} (location_id, sku_id, kind, quantity, on_hand_delta, reserved_delta, picked_delta, "
        f"  reason, source_system, reference, actor, at) "
        f"  SELECT location_id, sku_id, %s, quantity, 0, quantity, 0, '', 'portal', %s, %s, %s FROM raised RETURNING 1) "
        f"SELECT count(*) FROM written"
    )
    params = [value for (location_id, sku_id), quantity in wanted.items() for value in (location_id, sku_id, quantity)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, len(wanted), now, StockMovement.Kind.RESERVATION, reference, str(actor), now])
        (written,) = cursor.fetchone()
    if written != len(wanted):
        raise _shortage(wanted)


def _reserve_many_checked_first(wanted: dict[tuple[int, int], int], *, actor: Actor, reference: str) -> None:
    """stock_reserve_many without PostgreSQL (the SQLite of `make run`): its transactions take the write lock
    when they begin, so reading, checking and then writing cannot interleave with another writer."""
    with transaction.atomic():
        pairs = Q()
        for location_id, sku_id in wanted:
            pairs |= Q(location_id=location_id, sku_id=sku_id)
        levels = {(lvl.location_id, lvl.sku_id): lvl for lvl in StockLevel.objects.select_for_update().filter(pairs)}
        if any(key not in levels or levels[key].available < quantity for key, quantity in wanted.items()):
            raise _shortage(wanted)
        now = timezone.now()
        for key, quantity in wanted.items():
            StockLevel.objects.filter(pk=levels[key].pk).update(reserved=F("reserved") + quantity, updated_at=now)
        StockMovement.objects.bulk_create(
            StockMovement(
                location_id=location_id,
                sku_id=sku_id,
                kind=StockMovement.Kind.RESERVATION,
                quantity=quantity,
                reserved_delta=quantity,
                reference=reference,
                actor=str(actor),
            )
            for (location_id, sku_id), quantity in wanted.items()
        )


def _shortage(wanted: dict[tuple[int, int], int]) -> InsufficientStock:
    """Why a reservation fell short, read after the fact (for the message only)."""
    pairs = Q()
    for location_id, sku_id in wanted:
        pairs |= Q(location_id=location_id, sku_id=sku_id)
    levels = {(lvl.location_id, lvl.sku_id): lvl for lvl in StockLevel.objects.filter(pairs).select_related("sku", "location")}
    short = [(key, quantity) for key, quantity in wanted.items() if key not in levels or levels[key].available < quantity]
    parts = [
        f"{levels[key].sku.code} at {levels[key].location.code} needs {quantity}, {levels[key].available} available"
        if key in levels
        else f"SKU {key[1]} is not kept at location {key[0]}"
        for key, quantity in short
    ]
    return InsufficientStock(
        "Cannot reserve: " + ("; ".join(parts) or "another reservation took the stock meanwhile") + ".",
        location_ids=sorted({key[0] for key, _ in short}),
        sku_ids=sorted({key[1] for key, _ in short}),
    )


@transaction.atomic
def stock_write_off_reserved(
    *, location_id: int, sku_id: int, quantity: int, reason: str, actor: Actor, reference: str = "", source_system: str = "portal"
) -> StockMovement:
    """Reserved units that are not on the shelf after all (a short pick): they leave on_hand and the reservation."""
    _require_positive(quantity)
    return _apply(
        location_id=location_id,
        sku_id=sku_id,
        quantity=-quantity,
        move=_Move(StockMovement.Kind.ADJUSTMENT, on_hand=-quantity, reserved=-quantity),
        guard=Q(reserved__gte=F("picked") + quantity),
        actor=actor,
        reference=reference,
        reason=reason,
        source_system=source_system,
        shortage=f"Cannot write off {quantity} of {{sku}} at {{location}}: {{reserved}} reserved, {{picked}} picked.",
    )


@transaction.atomic
def stock_count_correction(
    *, location_id: int, sku_id: int, counted: int, actor: Actor, source_system: str, reference: str = ""
) -> StockMovement | None:
    """The system that owns physical counts (the WMS) says how many there are; it wins.

    When the count falls below what is reserved, reservations not yet picked
    shrink with it: those promises can no longer be kept, and whoever holds
    them finds out when they next look (an approval, a pick).
    """
    if not isinstance(counted, int) or counted < 0:
        raise InvalidInput(
            InventoryError.INVALID_QUANTITY, "A count must be zero or more.", fields={"counted": ["Must be zero or more."]}
        )
    stock_level_ensure(location_id=location_id, sku_id=sku_id)
    level = StockLevel.objects.select_for_update().get(location_id=location_id, sku_id=sku_id)
    on_hand_delta = counted - level.on_hand
    new_reserved = max(level.picked, min(level.reserved, counted))
    if counted < level.picked:
        raise InsufficientStock(
            f"A count of {counted} is below the {level.picked} units already picked; put them away or ship them first."
        )
    reserved_delta = new_reserved - level.reserved
    if not on_hand_delta and not reserved_delta:
        return None
    movement = _apply(
        location_id=location_id,
        sku_id=sku_id,
        quantity=on_hand_delta,
        move=_Move(StockMovement.Kind.SYNC_CORRECTION, on_hand=on_hand_delta, reserved=reserved_delta),
        guard=Q(),
        actor=actor,
        reference=reference,
        reason=f"count {counted}",
        source_system=source_system,
        shortage="",
    )
    if on_hand_delta - reserved_delta > 0:  # more is available than before
        listeners.stock_raised(location_id=location_id, sku_id=sku_id, actor=actor)
    return movement
