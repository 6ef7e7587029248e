"""Promised ship and arrival dates count working days on one calendar, with public holidays."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import BusinessCalendar, Holiday
from inventory.models import Location
from orders.models import Order, Shipment
from orders.selectors import shipment_promise
from tests.factories import proposed_split, stock

pytestmark = pytest.mark.django_db
MONDAY_TO_FRIDAY = {str(day): [["07:00", "15:00"]] for day in range(5)}
MONDAY_TO_SATURDAY = {str(day): [["07:00", "15:00"]] for day in range(6)}


def promise(site_country: str, destination: str, today: date, *, handling_days: int = 1, calendar=None):
    location = Location(code="SITE", country=site_country, handling_days=handling_days, calendar=calendar)
    result = shipment_promise(Shipment(location=location), Order(ship_country=destination), today=today)
    return result.ships_by, result.arrives_by


@pytest.mark.parametrize(
    ("today", "handling_days", "ships_by", "arrives_by"),
    [
        # Wed 25 Nov + 1: Thanksgiving (Thu 26) is skipped; then two domestic days, Mon 30 and Tue 1 Dec.
        (date(2026, 11, 25), 1, date(2026, 11, 27), date(2026, 12, 1)),
        # Wed 23 Dec + 2: Thu 24, Christmas (Fri 25) skipped, Mon 28; then Tue 29 and Wed 30.
        (date(2026, 12, 23), 2, date(2026, 12, 28), date(2026, 12, 30)),
    ],
    ids=["thanksgiving", "christmas"],
)
def test_a_us_site_does_not_hand_over_on_a_public_holiday(today, handling_days, ships_by, arrives_by):
    assert promise("US", "US", today, handling_days=handling_days) == (ships_by, arrives_by)


@pytest.mark.parametrize(
    ("site_country", "destination", "today", "ships_by", "arrives_by"),
    [
        # Ships Thu 22 Oct; five Irish carrier days skip the October Bank Holiday (Mon 26): Fri 30 Oct.
        ("US", "IE", date(2026, 10, 21), date(2026, 10, 22), date(2026, 10, 30)),
        # Ships Thu 30 Apr; five British carrier days skip the Early May Bank Holiday (Mon 4 May): Fri 8 May.
        ("NL", "GB", date(2026, 4, 29), date(2026, 4, 30), date(2026, 5, 8)),
    ],
    ids=["ireland", "britain"],
)
def test_a_bank_holiday_at_the_destination_pushes_the_arrival(site_country, destination, today, ships_by, arrives_by):
    assert promise(site_country, destination, today) == (ships_by, arrives_by)


def test_transit_counts_the_destinations_holidays_not_the_sites():
    # A US site ships Wed 25 Nov; Canada works on US Thanksgiving: Thu 26, Fri 27, Mon 30, Tue 1, Wed 2 Dec.
    assert promise("US", "CA", date(2026, 11, 24)) == (date(2026, 11, 25), date(2026, 12, 2))


def test_a_country_the_holidays_package_does_not_know_still_works_monday_to_friday():
    # Fri 27 Nov + 1 is Mon 30; five carrier days to an unknown destination end on Mon 7 Dec.
    assert promise("XX", "", date(2026, 11, 27)) == (date(2026, 11, 30), date(2026, 12, 7))


def test_a_location_with_its_own_calendar_hands_over_on_its_working_days():
    reno = BusinessCalendar.objects.create(
        name="Saturday shifts (Reno)", timezone="America/Los_Angeles", hours=MONDAY_TO_SATURDAY, country="US", subdivision="NV"
    )
    # Wed 25 Nov + 2 on a Monday-to-Saturday site in Nevada: Thanksgiving (Thu 26) and Nevada's Family Day
    # (Fri 27) are skipped, Saturday 28 counts, then Mon 30. The carrier works Monday to Friday: Tue 1, Wed 2 Dec.
    assert promise("US", "US", date(2026, 11, 25), handling_days=2, calendar=reno) == (date(2026, 11, 30), date(2026, 12, 2))

    Holiday.objects.create(calendar=reno, date=date(2026, 11, 28), name="Stocktake")
    reno = BusinessCalendar.objects.get(pk=reno.pk)
    assert promise("US", "US", date(2026, 11, 25), handling_days=2, calendar=reno) == (date(2026, 12, 1), date(2026, 12, 3))


def test_the_approval_page_promises_dates_that_skip_thanksgiving(client, network, service_agent):
    with time_machine.travel(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False):
        proposed_split(network)
        client.force_login(service_agent)

        body = client.get(reverse("split-approvals")).content.decode()

    assert body.count("ships by Fri 27 Nov, arrives by Tue 01 Dec") == 2


def test_the_approval_page_reads_calendars_without_a_query_per_row(client, network, service_agent):
    for site in (network["a"], network["b"], network["c"]):
        site.calendar = BusinessCalendar.objects.create(
            name=f"Site {site.code}", timezone="America/Chicago", hours=MONDAY_TO_FRIDAY, country="US"
        )
        site.calendar.holidays.create(date=date(2026, 11, 27), name="Stocktake")
        site.save()
    client.force_login(service_agent)

    def calendar_queries_for_the_page() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("split-approvals")).status_code == 200
        return [
            query["sql"] for query in captured if '"core_holiday"' in query["sql"] or '"core_businesscalendar"' in query["sql"]
        ]

    with time_machine.travel(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False):
        proposed_split(network)
        one_row = calendar_queries_for_the_page()
        for _ in range(4):
            stock(network["a"], network["x"], 2)
            stock(network["b"], network["y"], 3)
            proposed_split(network)
        five_rows = calendar_queries_for_the_page()
        body = client.get(reverse("split-approvals")).content.decode()

    # The calendars come with the shipments (one join) and their holidays in one more query.
    assert len(five_rows) == len(one_row) == 2
    # Thanksgiving and the sites' stocktake day: the sites hand over on Mon 30 Nov.
    assert body.count("ships by Mon 30 Nov, arrives by Wed 02 Dec") == 10
