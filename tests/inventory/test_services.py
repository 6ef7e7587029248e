import pytest
from django.db import IntegrityError, connection, transaction

from core.errors import InvalidInput
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches
from inventory.services import (
    InsufficientStock,
    stock_adjust,
    stock_pick,
    stock_receive,
    stock_release,
    stock_reserve,
    stock_reserve_many,
    stock_set_on_hand,
    stock_ship,
)
from tests.factories import LocationFactory, SkuFactory
from tests.threads import run_together

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return LocationFactory()


@pytest.fixture
def sku():
    return SkuFactory()


def level(site, sku) -> StockLevel:
    return StockLevel.objects.get(location=site, sku=sku)


def counters(site, sku) -> tuple[int, int, int]:
    lvl = level(site, sku)
    return lvl.on_hand, lvl.reserved, lvl.picked


def test_each_service_moves_its_counters_and_writes_one_ledger_row(site, sku, actor):
    ids = {"location_id": site.pk, "sku_id": sku.pk, "actor": actor}

    stock_receive(quantity=10, **ids)
    assert counters(site, sku) == (10, 0, 0)
    stock_adjust(delta=-2, reason="cycle count", **ids)
    assert counters(site, sku) == (8, 0, 0)
    stock_reserve(quantity=5, **ids)
    assert counters(site, sku) == (8, 5, 0)
    assert level(site, sku).available == 3
    stock_release(quantity=1, **ids)
    assert counters(site, sku) == (8, 4, 0)
    stock_pick(quantity=3, **ids)
    assert counters(site, sku) == (8, 4, 3)
    stock_ship(quantity=3, **ids)
    assert counters(site, sku) == (5, 1, 0)

    kinds = list(StockMovement.objects.filter(location=site, sku=sku).order_by("id").values_list("kind", flat=True))
    assert kinds == ["receipt", "adjustment", "reservation", "release", "pick", "ship"]
    assert stock_ledger_mismatches() == []
    assert set(StockMovement.objects.values_list("actor", flat=True)) == {"job:test"}


def test_reserve_beyond_available_raises_and_changes_nothing(site, sku, actor):
    stock_receive(location_id=site.pk, sku_id=sku.pk, quantity=3, actor=actor)
    stock_reserve(location_id=site.pk, sku_id=sku.pk, quantity=2, actor=actor)
    movements = StockMovement.objects.count()

    with pytest.raises(InsufficientStock) as excinfo:
        stock_reserve(location_id=site.pk, sku_id=sku.pk, quantity=2, actor=actor)

    assert "1 available" in excinfo.value.message
    assert excinfo.value.code == "insufficient_stock"
    assert counters(site, sku) == (3, 2, 0)
    assert StockMovement.objects.count() == movements


def test_reserve_where_no_stock_is_kept_raises(site, sku, actor):
    with pytest.raises(InsufficientStock):
        stock_reserve(location_id=site.pk, sku_id=sku.pk, quantity=1, actor=actor)
    assert not StockMovement.objects.exists()


@pytest.mark.parametrize("quantity", [0, -1, 1.5, True])
def test_quantities_must_be_positive_whole_numbers(site, sku, actor, quantity):
    with pytest.raises(InvalidInput):
        stock_receive(location_id=site.pk, sku_id=sku.pk, quantity=quantity, actor=actor)
    assert not StockMovement.objects.exists()


def test_release_and_ship_cannot_exceed_what_is_reserved_or_picked(site, sku, actor):
    ids = {"location_id": site.pk, "sku_id": sku.pk, "actor": actor}
    stock_receive(quantity=5, **ids)
    stock_reserve(quantity=2, **ids)
    stock_pick(quantity=1, **ids)

    with pytest.raises(InsufficientStock):
        stock_release(quantity=2, **ids)  # one of the two is already off the shelf
    with pytest.raises(InsufficientStock):
        stock_ship(quantity=2, **ids)  # only one picked
    with pytest.raises(InsufficientStock):
        stock_pick(quantity=2, **ids)  # only one more reserved
    assert counters(site, sku) == (5, 2, 1)


def test_adjustment_cannot_take_on_hand_below_reserved(site, sku, actor):
    ids = {"location_id": site.pk, "sku_id": sku.pk, "actor": actor}
    stock_receive(quantity=5, **ids)
    stock_reserve(quantity=4, **ids)

    with pytest.raises(InsufficientStock):
        stock_adjust(delta=-2, reason="count", **ids)
    stock_adjust(delta=-1, reason="count", **ids)
    assert counters(site, sku) == (4, 4, 0)


def test_set_on_hand_writes_an_adjustment_only_when_the_count_differs(site, sku, actor):
    ids = {"location_id": site.pk, "sku_id": sku.pk, "actor": actor}
    assert stock_set_on_hand(on_hand=7, reason="count", **ids).on_hand_delta == 7
    assert stock_set_on_hand(on_hand=7, reason="count", **ids) is None
    assert stock_set_on_hand(on_hand=4, reason="count", **ids).on_hand_delta == -3
    assert counters(site, sku) == (4, 0, 0)
    assert StockMovement.objects.count() == 2


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE inventory_stocklevel SET on_hand = -1 WHERE id = %s",
        "UPDATE inventory_stocklevel SET reserved = -1 WHERE id = %s",
        "UPDATE inventory_stocklevel SET reserved = on_hand + 1 WHERE id = %s",
        "UPDATE inventory_stocklevel SET picked = reserved + 1 WHERE id = %s",
    ],
)
def test_check_constraints_reject_impossible_counters_even_around_the_services(site, sku, actor, sql):
    stock_receive(location_id=site.pk, sku_id=sku.pk, quantity=5, actor=actor)
    pk = level(site, sku).pk

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [pk])

    assert counters(site, sku) == (5, 0, 0)


def test_check_constraints_reject_a_bulk_update_through_the_orm(site, sku, actor):
    from django.db.models import F

    stock_receive(location_id=site.pk, sku_id=sku.pk, quantity=5, actor=actor)
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.filter(pk=level(site, sku).pk).update(reserved=F("on_hand") + 10)
    assert counters(site, sku) == (5, 0, 0)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_reservations_never_oversell(site, sku, actor):
    """8 workers, each on its own connection, ask for 1,600 single units against 1,000 on hand."""
    stock_receive(location_id=site.pk, sku_id=sku.pk, quantity=1000, actor=actor)
    workers, attempts_each = 8, 200
    outcomes: list[list[bool]] = [[] for _ in range(workers)]

    def work(index: int) -> None:
        for _ in range(attempts_each):
            try:
                stock_reserve(location_id=site.pk, sku_id=sku.pk, quantity=1, actor=actor, reference=f"worker:{index}")
                outcomes[index].append(True)
            except InsufficientStock:
                outcomes[index].append(False)

    assert run_together(workers, work) == []
    results = [ok for worker in outcomes for ok in worker]
    assert len(results) == 1600
    assert sum(results) == 1000
    assert counters(site, sku) == (1000, 1000, 0)
    assert StockMovement.objects.filter(kind="reservation").count() == 1000
    assert stock_ledger_mismatches() == []
    assert sum(1 for worker in outcomes if any(worker)) > 1  # the stock really was contended


def test_a_plan_is_reserved_whole_in_one_statement_or_not_at_all(actor, django_assert_num_queries):
    north, south = LocationFactory(code="NORTH"), LocationFactory(code="SOUTH")
    bolt, nut, washer = SkuFactory(code="BOLT"), SkuFactory(code="NUT"), SkuFactory(code="WASHER")
    for location, sku_item, units in ((north, bolt, 5), (north, nut, 5), (south, washer, 2)):
        stock_receive(location_id=location.pk, sku_id=sku_item.pk, quantity=units, actor=actor)
    movements_before = StockMovement.objects.count()

    with django_assert_num_queries(1):
        stock_reserve_many(
            items=[(north.pk, bolt.pk, 2), (north.pk, nut.pk, 1), (south.pk, washer.pk, 2), (north.pk, bolt.pk, 1)],
            actor=actor,
            reference="order:1",
        )

    assert [counters(north, bolt), counters(north, nut), counters(south, washer)] == [(5, 3, 0), (5, 1, 0), (2, 2, 0)]
    written = StockMovement.objects.filter(reference="order:1").order_by("sku__code")
    assert [(m.sku.code, m.kind, m.quantity, m.reserved_delta, m.actor) for m in written] == [
        ("BOLT", "reservation", 3, 3, str(actor)),
        ("NUT", "reservation", 1, 1, str(actor)),
        ("WASHER", "reservation", 2, 2, str(actor)),
    ]

    # One item short (WASHER has none left) or not kept at all: nothing of the plan is reserved, nothing is written.
    for short_item, says in (
        ((south.pk, washer.pk, 1), "WASHER at SOUTH needs 1, 0 available"),
        ((south.pk, nut.pk, 1), f"SKU {nut.pk} is not kept at location {south.pk}"),
    ):
        with pytest.raises(InsufficientStock) as excinfo:
            stock_reserve_many(items=[(north.pk, bolt.pk, 1), short_item], actor=actor, reference="order:2")
        assert says in excinfo.value.message
        assert counters(north, bolt) == (5, 3, 0)
    assert StockMovement.objects.count() == movements_before + 3
    assert stock_ledger_mismatches() == []


def test_a_plan_needs_positive_quantities(site, sku, actor):
    stock_receive(location_id=site.pk, sku_id=sku.pk, quantity=5, actor=actor)
    with pytest.raises(InvalidInput):
        stock_reserve_many(items=[(site.pk, sku.pk, 0)], actor=actor)
    assert counters(site, sku) == (5, 0, 0)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_plans_over_the_same_skus_neither_deadlock_nor_oversell(actor):
    """6 workers reserve two SKUs at two sites, half of them listing the items in the opposite order."""
    north, south = LocationFactory(code="NORTH"), LocationFactory(code="SOUTH")
    first, second = SkuFactory(code="FIRST"), SkuFactory(code="SECOND")
    for location in (north, south):
        for sku_item in (first, second):
            stock_receive(location_id=location.pk, sku_id=sku_item.pk, quantity=150, actor=actor)
    plan = [(north.pk, first.pk, 1), (north.pk, second.pk, 1), (south.pk, first.pk, 1), (south.pk, second.pk, 1)]
    workers, attempts_each = 6, 40
    outcomes: list[list[bool]] = [[] for _ in range(workers)]

    def work(index: int) -> None:
        items = plan if index % 2 else list(reversed(plan))
        for _ in range(attempts_each):
            try:
                with transaction.atomic():
                    stock_reserve_many(items=items, actor=actor, reference=f"worker:{index}")
                outcomes[index].append(True)
            except InsufficientStock:
                outcomes[index].append(False)

    assert run_together(workers, work) == []  # a deadlock would come back as OperationalError
    results = [ok for worker in outcomes for ok in worker]
    assert len(results) == 240 and sum(results) == 150
    for location in (north, south):
        for sku_item in (first, second):
            assert counters(location, sku_item) == (150, 150, 0)
    assert StockMovement.objects.filter(kind="reservation").count() == 600
    assert stock_ledger_mismatches() == []
