import threading

import pytest
from django.db import IntegrityError, connection, transaction

from fulfillment.errors import InvalidInput
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches
from inventory.services import (
    InsufficientStock,
    stock_adjust,
    stock_pick,
    stock_receive,
    stock_release,
    stock_reserve,
    stock_set_on_hand,
    stock_ship,
)
from tests.factories import LocationFactory, SkuFactory

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
    start = threading.Barrier(workers)

    def work(index: int) -> None:
        try:
            start.wait()
            for _ in range(attempts_each):
                try:
                    stock_reserve(location_id=site.pk, sku_id=sku.pk, quantity=1, actor=actor, reference=f"worker:{index}")
                    outcomes[index].append(True)
                except InsufficientStock:
                    outcomes[index].append(False)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    results = [ok for worker in outcomes for ok in worker]
    assert len(results) == 1600
    assert sum(results) == 1000
    assert counters(site, sku) == (1000, 1000, 0)
    assert StockMovement.objects.filter(kind="reservation").count() == 1000
    assert stock_ledger_mismatches() == []
    assert sum(1 for worker in outcomes if any(worker)) > 1  # the stock really was contended
