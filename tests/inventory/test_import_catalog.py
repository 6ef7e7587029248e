from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inventory.models import Location, Sku, StockLevel, StockMovement
from inventory.selectors import stock_ledger_mismatches

pytestmark = pytest.mark.django_db
CATALOG = Path(__file__).resolve().parent.parent / "fixtures" / "catalog"


def import_catalog(**files) -> str:
    out = StringIO()
    call_command("import_catalog", stdout=out, stderr=StringIO(), **{k: CATALOG / v for k, v in files.items()})
    return out.getvalue()


def state() -> tuple:
    return (
        list(Location.objects.order_by("code").values_list("code", "name", "kind", "country", "ships_to")),
        list(Sku.objects.order_by("code").values_list("code", "name", "case_pack", "unit_price")),
        list(StockLevel.objects.order_by("pk").values_list("on_hand", "safety_stock", "reorder_point", "lead_time_days")),
        StockMovement.objects.count(),
    )


def test_import_creates_locations_skus_substitutes_and_stock_through_the_ledger():
    out = import_catalog(locations="locations.csv", skus="skus.csv", stock="stock.csv")

    assert "locations.csv: 3 created, 0 updated, 0 unchanged" in out
    east = Location.objects.get(code="WH-EAST")
    assert (east.name, east.ships_to, east.postal_prefixes) == ("East Coast DC, Newark", ["US", "CA"], ["07", "08"])
    chai = Sku.objects.get(code="NW-001")
    assert (chai.case_pack, str(chai.unit_price)) == (10, "18.00")
    assert list(chai.substitutes.values_list("code", flat=True)) == ["NW-002"]
    level = StockLevel.objects.get(location=east, sku=chai)
    assert (level.on_hand, level.safety_stock, level.reorder_point, level.lead_time_days) == (39, 5, 10, 7)
    movement = StockMovement.objects.get(location=east, sku=chai)
    assert (movement.kind, movement.quantity, movement.actor, movement.reference) == (
        "adjustment",
        39,
        "job:import_catalog",
        "stock.csv:2",
    )
    assert stock_ledger_mismatches() == []


def test_importing_the_same_files_twice_changes_nothing():
    import_catalog(locations="locations.csv", skus="skus.csv", stock="stock.csv")
    before = state()

    out = import_catalog(locations="locations.csv", skus="skus.csv", stock="stock.csv")

    assert state() == before
    assert "stock.csv: 0 created, 0 updated, 4 unchanged" in out
    assert "skus.csv: 0 created, 0 updated, 4 unchanged" in out


def test_stock_levels_change_in_location_and_sku_order_whatever_the_files_order(tmp_path):
    import_catalog(locations="locations.csv", skus="skus.csv")
    backwards = tmp_path / "stock.csv"
    lines = (CATALOG / "stock.csv").read_text().splitlines()
    backwards.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")

    call_command("import_catalog", stock=backwards, stdout=StringIO(), stderr=StringIO())

    # The ledger is written as the levels are locked: the order every other path locks them in.
    written = list(StockMovement.objects.order_by("id").values_list("location_id", "sku_id"))
    assert written == sorted(written) and len(written) == 3  # STORE-LON's NW-004 stays at 0: no movement


def test_a_changed_count_is_imported_as_an_adjustment(tmp_path):
    import_catalog(locations="locations.csv", skus="skus.csv", stock="stock.csv")
    recount = tmp_path / "recount.csv"
    recount.write_text("location,sku,on_hand,safety_stock,reorder_point,lead_time_days\nWH-EAST,NW-001,30,5,10,7\n")

    call_command("import_catalog", stock=recount, stdout=StringIO(), stderr=StringIO())

    assert StockLevel.objects.get(location__code="WH-EAST", sku__code="NW-001").on_hand == 30
    assert StockMovement.objects.filter(sku__code="NW-001").order_by("id").last().on_hand_delta == -9


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"stock": "stock_unknown_location.csv"}, "stock_unknown_location.csv:3: unknown location 'WH-NOWHERE'"),
        ({"stock": "stock_negative_quantity.csv"}, "stock_negative_quantity.csv:4: on_hand must be 0 or more, got -5"),
        ({"skus": "skus_missing_column.csv"}, "skus_missing_column.csv:1: missing column unit_price"),
    ],
)
def test_a_bad_file_names_file_and_line_and_imports_nothing(files, message):
    # the good locations and SKUs ride along in the same run: they are rolled back too
    run = {"locations": "locations.csv", "skus": "skus.csv", **files}
    before = state()

    with pytest.raises(CommandError) as excinfo:
        import_catalog(**run)

    assert message in str(excinfo.value)
    assert "nothing imported" in str(excinfo.value)
    assert state() == before


def test_unknown_substitute_and_duplicate_rows_are_reported_together(tmp_path):
    bad = tmp_path / "skus.csv"
    bad.write_text("code,name,uom,case_pack,unit_price,substitutes\nA,Alpha,each,1,1.00,ZZZ\nA,Alpha again,each,0,x,\n")

    with pytest.raises(CommandError) as excinfo:
        call_command("import_catalog", skus=bad, stdout=StringIO(), stderr=StringIO())

    text = str(excinfo.value)
    assert "skus.csv:2: unknown substitute SKU ZZZ" in text
    assert "skus.csv:3: case_pack must be 1 or more, got 0" in text
    assert "skus.csv:3: unit_price must be a price of zero or more, got 'x'" in text
    assert "skus.csv:3: duplicate of line 2" in text
    assert not Sku.objects.exists()
