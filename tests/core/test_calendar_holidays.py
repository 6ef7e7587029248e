"""A business calendar takes its country's public holidays from the holidays package, plus the days people add."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from core.models import BusinessCalendar, Holiday

pytestmark = pytest.mark.django_db
OFFICE_HOURS = {str(day): [["08:00", "18:00"]] for day in range(5)}
KINGS_DAY_2026 = date(2026, 4, 27)


def calendar(**fields) -> BusinessCalendar:
    return BusinessCalendar(**{"name": "Test", "timezone": "Europe/Amsterdam", "hours": OFFICE_HOURS, **fields})


def messages(error: ValidationError, field: str) -> str:
    return " ".join(error.message_dict[field])


def test_the_seeded_office_calendar_keeps_dutch_public_holidays():
    office = BusinessCalendar.objects.get(name="Office hours (Amsterdam)")

    assert (office.country, office.subdivision) == ("NL", "")
    assert {KINGS_DAY_2026, date(2026, 12, 25), date(2026, 12, 26)} <= office.working_calendar(years=[2026]).holidays


def test_public_holidays_and_the_days_people_add_are_both_closed():
    office = calendar(country="NL")
    office.save()
    Holiday.objects.create(calendar=office, date=date(2026, 4, 28), name="Stocktake")

    working = office.working_calendar(years=[2026])

    assert not working.is_working_day(KINGS_DAY_2026)
    assert not working.is_working_day(date(2026, 4, 28))
    assert working.is_working_day(date(2026, 4, 29))


def test_only_the_years_asked_for_are_looked_up():
    holidays = calendar(country="NL").working_calendar(years=range(2026, 2028)).holidays

    assert KINGS_DAY_2026 in holidays and date(2027, 4, 27) in holidays
    assert date(2025, 4, 26) not in holidays and date(2028, 4, 27) not in holidays


def test_a_subdivision_adds_its_own_holidays():
    scotland = calendar(name="Glasgow", timezone="Europe/London", country="GB", subdivision="SCT")
    england = calendar(name="Leeds", timezone="Europe/London", country="GB", subdivision="ENG")

    assert date(2026, 1, 2) in scotland.working_calendar(years=[2026]).holidays
    assert date(2026, 1, 2) not in england.working_calendar(years=[2026]).holidays


def test_country_and_subdivision_are_written_the_way_the_package_spells_them():
    texas = calendar(country="us", subdivision="tx")
    texas.full_clean()
    assert (texas.country, texas.subdivision) == ("US", "TX")

    scotland = calendar(country="gb", subdivision="Scotland")
    scotland.full_clean()
    assert (scotland.country, scotland.subdivision) == ("GB", "SCT")


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("XX", "'XX' is not a country whose public holidays are known"),
        ("NLD", "ISO 3166-1 alpha-2"),
        ("UK", "'UK' stands for GB"),
        ("", "This field cannot be blank."),
    ],
)
def test_an_unknown_country_is_refused_with_a_clear_message(country, expected):
    with pytest.raises(ValidationError) as excinfo:
        calendar(country=country).full_clean()

    assert expected in messages(excinfo.value, "country")


def test_an_unknown_subdivision_is_refused_and_the_known_ones_are_named():
    with pytest.raises(ValidationError) as excinfo:
        calendar(country="GB", subdivision="Cornwall").full_clean()

    message = messages(excinfo.value, "subdivision")
    assert "'Cornwall' is not a subdivision of GB" in message
    assert "ENG, NIR, SCT, WLS" in message


def test_a_subdivision_of_a_country_without_any_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        calendar(country="IS", subdivision="1").full_clean()

    assert "IS has no subdivisions with holidays of their own; leave it empty" in messages(excinfo.value, "subdivision")


def test_a_bad_country_and_bad_hours_are_both_reported():
    with pytest.raises(ValidationError) as excinfo:
        calendar(country="XX", hours={"9": [["08:00", "18:00"]]}).full_clean()

    assert set(excinfo.value.message_dict) >= {"country", "hours"}


def admin_form(**fields) -> dict:
    form = {
        "name": "Dublin office",
        "timezone": "Europe/Dublin",
        "hours": '{"0": [["09:00", "17:00"]]}',
        "country": "IE",
        "subdivision": "",
        "holidays-TOTAL_FORMS": "1",
        "holidays-INITIAL_FORMS": "0",
        "holidays-MIN_NUM_FORMS": "0",
        "holidays-MAX_NUM_FORMS": "1000",
        "holidays-0-date": "2026-12-24",
        "holidays-0-name": "Office closed",
    }
    return {**form, **fields}


def test_the_admin_refuses_an_unknown_country_and_keeps_a_known_one_with_its_added_days(admin_client):
    from django.urls import reverse

    add = reverse("admin:core_businesscalendar_add")

    refused = admin_client.post(add, admin_form(country="XX"))
    assert refused.status_code == 200
    assert "is not a country whose public holidays are known" in refused.content.decode()
    assert not BusinessCalendar.objects.filter(name="Dublin office").exists()

    assert admin_client.post(add, admin_form(country="ie")).status_code == 302
    dublin = BusinessCalendar.objects.get(name="Dublin office")
    assert dublin.country == "IE"
    assert {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)} <= dublin.working_calendar(years=[2026]).holidays

    change = admin_client.get(reverse("admin:core_businesscalendar_change", args=[dublin.pk])).content.decode()
    assert "Saint Stephen" in change and "Office closed" in change
