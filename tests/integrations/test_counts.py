"""The WMS's counts against our stock: the portal pulls the simulated WMS's GET /inventory, asks it for a recount,
and takes its inventory.counted answer, all over real HTTP, through the reconcile the drift service runs."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from exceptions.actions import action_perform
from exceptions.models import ExceptionStatus, FulfillmentException
from integrations.models import DeliveryStatus, ExternalSystem, InboundStatus, ReportedStock
from integrations.services.drift import wms_counts_pull
from integrations.signatures import standard_headers
from integrations.simulator import SHELF_DRIFT, STOREFRONT, WMS, Simulator
from inventory.models import Location, StockLevel, StockMovement
from tests.factories import LocationFactory, SkuFactory, stock
from tests.integrations.test_simulator import deliver_pending, play_out, send_and_apply

live = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def floor(transactional_db):
    east = LocationFactory(code="WH-EAST")
    mug = SkuFactory(code="MUG-1")
    stock(east, mug, 40)
    return {"east": east, "mug": mug}


def tolerate(location: Location, *, units: int, percent: str) -> None:
    location.drift_tolerance_units, location.drift_tolerance_percent = units, Decimal(percent)
    location.save()


def pull():
    return wms_counts_pull(ExternalSystem.objects.get(slug=WMS))


def on_hand(floor) -> int:
    return StockLevel.objects.get(location=floor["east"], sku=floor["mug"]).on_hand


def drifts():
    return FulfillmentException.objects.filter(type__code="inventory_drift")


def corrections():
    return StockMovement.objects.filter(kind="sync_correction")


def inventory_url(simulator: Simulator) -> str:
    return f"http://127.0.0.1:{simulator.ports[WMS]}/inventory"


def get_inventory(simulator: Simulator, *, secret: str | None = None, at: datetime | None = None) -> httpx.Response:
    headers = standard_headers(secret or simulator.systems[WMS].secret, message_id="pull_test", body=b"", at=at)
    return httpx.get(inventory_url(simulator), headers=headers)


# --- GET /inventory ------------------------------------------------------------------------------------------


@live
def test_the_wms_answers_a_signed_pull_with_the_counts_of_the_locations_it_runs(simulate, floor):
    west, closed = LocationFactory(code="WH-WEST"), LocationFactory(code="WH-OLD", active=False)
    lamp = SkuFactory(code="LAMP-2")
    stock(west, floor["mug"], 7)
    stock(west, lamp, 3)
    stock(closed, lamp, 9)
    simulator = simulate()

    every = get_inventory(simulator)
    ExternalSystem.objects.get(slug=WMS).locations.set([west])
    named = get_inventory(simulator)

    assert every.status_code == 200
    body = every.json()
    assert datetime.fromisoformat(body["counted_at"]) > timezone.now() - timedelta(minutes=1)
    assert body["locations"] == [
        {"location": "WH-EAST", "counts": [{"sku": "MUG-1", "quantity": 40}]},
        {"location": "WH-WEST", "counts": [{"sku": "LAMP-2", "quantity": 3}, {"sku": "MUG-1", "quantity": 7}]},
    ]
    assert named.status_code == 200
    assert [entry["location"] for entry in named.json()["locations"]] == ["WH-WEST"]
    tally = simulator.systems[WMS].tally
    assert (tally.pulls, tally.received, tally.rejected) == (2, 0, 0)
    assert simulator.delivered_types == {}  # a pull is not a delivery


@live
def test_a_pull_with_a_bad_stale_or_no_signature_is_401(simulate, floor):
    simulator = simulate()

    forged = get_inventory(simulator, secret="whsec_" + "A" * 32)
    stale = get_inventory(simulator, at=datetime.now(UTC) - timedelta(minutes=10))
    unsigned = httpx.get(inventory_url(simulator))
    genuine = get_inventory(simulator)

    assert [answer.status_code for answer in (forged, stale, unsigned, genuine)] == [401, 401, 401, 200]
    assert "locations" not in forged.json() and "locations" not in unsigned.json()
    tally = simulator.systems[WMS].tally
    assert (tally.rejected, tally.pulls) == (3, 1)


@live
def test_only_the_wms_answers_for_inventory(simulate, floor):
    simulator = simulate()
    shop = simulator.systems[STOREFRONT]

    answer = httpx.get(
        f"http://127.0.0.1:{simulator.ports[STOREFRONT]}/inventory",
        headers=standard_headers(shop.secret, message_id="pull_test", body=b""),
    )

    assert answer.status_code == 404


# --- the pull, reconciled ------------------------------------------------------------------------------------


@live
def test_a_pulled_count_equal_to_ours_changes_nothing(simulate, floor):
    simulate(count_drift_rate=0.0)

    pulled = pull()

    assert (pulled.errors, pulled.locations) == ([], 1)
    assert (pulled.result.matched, pulled.result.corrected, pulled.result.drifted) == (1, 0, [])
    assert on_hand(floor) == 40
    assert not corrections().exists()
    assert not drifts().exists()
    reported = ReportedStock.objects.get(system__slug=WMS)
    assert (reported.item_ref, reported.location_ref, reported.quantity) == ("MUG-1", "WH-EAST", 40)


@live
def test_a_pulled_count_within_tolerance_is_taken_as_one_sync_correction(simulate, floor):
    # As many units as the WMS can be off on 40: whatever it has wrong is within tolerance.
    tolerate(floor["east"], units=round(40 * SHELF_DRIFT[1]), percent="0")
    simulator = simulate(count_drift_rate=1.0)
    counted = simulator.on_shelf("WH-EAST", "MUG-1", 40)
    assert 1 <= abs(counted - 40) <= 40 * SHELF_DRIFT[1]

    pulled = pull()

    assert pulled.errors == []
    assert (pulled.result.matched, pulled.result.corrected, pulled.result.drifted) == (0, 1, [])
    assert on_hand(floor) == counted
    correction = corrections().get()
    assert (correction.on_hand_delta, correction.source_system, correction.reference) == (counted - 40, "wms", f"count:{WMS}")
    assert not drifts().exists()


@live
def test_a_pulled_count_beyond_tolerance_opens_one_drift_and_a_second_pull_adds_an_occurrence(simulate, floor):
    tolerate(floor["east"], units=0, percent="0")
    simulator = simulate(count_drift_rate=1.0)
    ReportedStock.objects.create(
        system=ExternalSystem.objects.get(slug=STOREFRONT),
        item_ref="MUG-1",
        location_ref="WH-EAST",
        sku=floor["mug"],
        location=floor["east"],
        quantity=37,
        reported_at=timezone.now(),
    )
    counted = simulator.on_shelf("WH-EAST", "MUG-1", 40)

    first = pull()

    assert first.errors == []
    (drift,) = first.result.drifted
    drift.refresh_from_db()
    assert (drift.location, drift.sku, drift.order, drift.status) == (floor["east"], floor["mug"], None, ExceptionStatus.OPEN)
    assert {key: drift.detail[key] for key in ("system", "ours", "counted", "storefront")} == {
        "system": WMS,
        "ours": 40,
        "counted": counted,
        "storefront": 37,
    }
    assert on_hand(floor) == 40
    assert not corrections().exists()

    second = pull()  # nothing moved on either side: the WMS says the same again

    (again,) = second.result.drifted
    assert again.pk == drift.pk
    assert drifts().count() == 1
    drift.refresh_from_db()
    assert (drift.occurrences, drift.detail["counted"], drift.status) == (2, counted, ExceptionStatus.OPEN)
    assert on_hand(floor) == 40


@live
@pytest.mark.parametrize("outage", ["answers 500", "times out", "is down"])
def test_a_wms_that_fails_the_pull_gives_an_error_and_changes_nothing(simulate, floor, settings, outage):
    settings.OUTBOX_TIMEOUT_SECONDS = 0.5
    tolerate(floor["east"], units=0, percent="0")  # had it answered, every figure would be a drift
    simulator = simulate(count_drift_rate=1.0, fault_rate=1.0, timeout_share=1.0 if outage == "times out" else 0.0)
    url = inventory_url(simulator)
    if outage == "is down":
        simulator.stop()

    pulled = pull()

    error = {"answers 500": "HTTPStatusError", "times out": "ReadTimeout", "is down": "ConnectError"}[outage]
    assert len(pulled.errors) == 1 and pulled.errors[0].startswith(f"{url}: {error}"), pulled.errors
    assert (pulled.locations, pulled.result.matched, pulled.result.corrected, pulled.result.drifted) == (0, 0, 0, [])
    assert on_hand(floor) == 40
    assert not corrections().exists()
    assert not drifts().exists()
    assert not ReportedStock.objects.filter(system__slug=WMS).exists()
    if outage == "answers 500":
        assert simulator.systems[WMS].tally.failed == 1


# --- the recount ---------------------------------------------------------------------------------------------


@live
def test_a_recount_asked_for_comes_back_as_a_count_that_agrees_and_resolves_the_drift(simulate, floor, coordinator):
    tolerate(floor["east"], units=0, percent="0")
    simulator = simulate(count_drift_rate=1.0)
    (drift,) = pull().result.drifted

    action_perform(code="request_recount", exception_id=drift.pk, user=coordinator, data={})

    drift.refresh_from_db()
    assert drift.status == ExceptionStatus.WAITING
    (delivery,) = deliver_pending(WMS)
    assert delivery.status == DeliveryStatus.DELIVERED
    assert simulator.delivered_types == {f"{WMS}:count.requested": 1}
    assert simulator.systems[WMS].tally.received == 1

    (webhook,) = play_out(simulator)

    assert webhook.topic == "inventory.counted"
    assert webhook.payload["data"] == {"location": "WH-EAST", "counts": [{"sku": "MUG-1", "quantity": 40}]}
    event = send_and_apply(simulator, webhook)
    assert event.status == InboundStatus.APPLIED, event.error
    drift.refresh_from_db()
    assert (drift.status, drift.resolution_action) == (ExceptionStatus.RESOLVED, "count_agrees")
    assert on_hand(floor) == 40
    assert not corrections().exists()
    assert simulator.sent == {"inventory.counted": 1} and simulator.answers == {"202": 1}

    # The recount holds while our figure stands: the next pull agrees instead of raising the drift again.
    later = pull()
    assert (later.result.matched, later.result.drifted) == (1, [])
    assert drifts().count() == 1


@live
def test_a_recount_of_a_location_the_wms_does_not_run_is_not_answered(simulate, floor):
    west = LocationFactory(code="WH-WEST")
    simulator = simulate()
    ExternalSystem.objects.get(slug=WMS).locations.set([west])

    assert simulator.build_recount({"location": "WH-EAST", "sku": "MUG-1"}) is None
    assert simulator.build_recount({"location": "WH-WEST", "sku": "NO-SUCH-SKU"}) is None
    assert simulator.build_recount({"location": "WH-WEST", "sku": "MUG-1"}).payload["data"]["counts"] == [
        {"sku": "MUG-1", "quantity": 0}  # nothing of it is kept there
    ]


# --- the tolerance rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "percent", "ours", "counted", "within"),
    [
        (2, "5", 50, 50, True),
        (2, "5", 50, 52, True),  # the units allow more than 5 % of 50
        (2, "5", 50, 48, True),
        (2, "5", 50, 53, False),
        (2, "5", 200, 210, True),  # 5 % of 200 allows more than the units
        (2, "5", 200, 190, True),
        (2, "5", 200, 211, False),
        (2, "5", 200, 189, False),
        (2, "5", 0, 2, True),  # no share of nothing: only the units
        (2, "5", 0, 3, False),
        (0, "0", 40, 40, True),
        (0, "0", 40, 41, False),
        (0, "2.5", 40, 41, True),
        (0, "2.5", 40, 39, True),
        (0, "2.5", 40, 42, False),
    ],
)
def test_a_count_is_within_tolerance_by_the_units_or_the_percent_whichever_allows_more(units, percent, ours, counted, within):
    location = Location(code="WH-T", drift_tolerance_units=units, drift_tolerance_percent=Decimal(percent))

    assert location.drift_within_tolerance(ours, counted) is within
