"""Counting whole working days on the business calendar: what promised ship and arrival dates need."""

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.business_calendar import WorkingCalendar

WHOLE_DAY = [(time(0), time.max)]
MONDAY_TO_FRIDAY = {weekday: WHOLE_DAY for weekday in range(5)}
MONDAY_TO_SATURDAY = {weekday: WHOLE_DAY for weekday in range(6)}
THANKSGIVING_2026 = date(2026, 11, 26)
CHRISTMAS_2026 = date(2026, 12, 25)
NEW_YEAR_2027 = date(2027, 1, 1)


def weekdays(holidays=frozenset(), hours=MONDAY_TO_FRIDAY) -> WorkingCalendar:
    return WorkingCalendar("America/New_York", hours, frozenset(holidays))


def test_a_working_day_has_working_hours_and_is_not_a_holiday():
    calendar = weekdays({THANKSGIVING_2026})

    assert calendar.is_working_day(date(2026, 11, 25))  # Wednesday
    assert not calendar.is_working_day(THANKSGIVING_2026)
    assert not calendar.is_working_day(date(2026, 11, 28))  # Saturday
    assert weekdays(hours=MONDAY_TO_SATURDAY).is_working_day(date(2026, 11, 28))


def test_a_day_with_a_short_shift_is_a_working_day():
    calendar = WorkingCalendar("Europe/Amsterdam", {5: [(time(9), time(12))], 0: [(time(8), time(18))]})

    assert calendar.is_working_day(date(2026, 11, 28))  # Saturday morning shift
    assert not calendar.is_working_day(date(2026, 11, 27))  # Friday: no hours at all


def test_working_days_skip_weekends_and_holidays():
    calendar = weekdays({THANKSGIVING_2026})

    assert weekdays().add_working_days(date(2026, 11, 25), 1) == THANKSGIVING_2026
    assert calendar.add_working_days(date(2026, 11, 25), 1) == date(2026, 11, 27)
    assert calendar.add_working_days(date(2026, 11, 25), 2) == date(2026, 11, 30)


def test_the_count_crosses_christmas_and_new_year():
    calendar = weekdays({CHRISTMAS_2026, NEW_YEAR_2027})

    # Thu 24 Dec + 2: Fri 25 is Christmas, the weekend, then Mon 28 and Tue 29.
    assert calendar.add_working_days(date(2026, 12, 24), 2) == date(2026, 12, 29)
    # Wed 30 Dec + 2: Thu 31, then Fri 1 Jan is New Year's Day, so Mon 4 Jan.
    assert calendar.add_working_days(date(2026, 12, 30), 2) == date(2027, 1, 4)


def test_the_start_day_itself_is_never_counted():
    calendar = weekdays()

    assert calendar.add_working_days(date(2026, 11, 27), 0) == date(2026, 11, 27)
    assert calendar.add_working_days(date(2026, 11, 28), 0) == date(2026, 11, 28)  # a Saturday stays a Saturday
    assert calendar.add_working_days(date(2026, 11, 28), 1) == date(2026, 11, 30)


@pytest.mark.parametrize(
    ("start", "days", "error"),
    [
        (date(2026, 11, 25), -1, ValueError),
        (date(2026, 11, 25), 1.5, TypeError),
        (date(2026, 11, 25), True, TypeError),
        (datetime(2026, 11, 25, 9), 1, TypeError),
    ],
)
def test_a_count_that_means_nothing_is_refused(start, days, error):
    with pytest.raises(error):
        weekdays().add_working_days(start, days)


@given(
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    days=st.integers(min_value=0, max_value=40),
    holidays=st.frozensets(st.dates(min_value=date(2020, 1, 1), max_value=date(2036, 12, 31)), max_size=40),
    working_weekdays=st.frozensets(st.integers(min_value=0, max_value=6), min_size=1),
)
def test_the_result_is_the_nth_working_day_after_the_start(start, days, holidays, working_weekdays):
    calendar = weekdays(holidays, {weekday: WHOLE_DAY for weekday in working_weekdays})

    result = calendar.add_working_days(start, days)

    between = [start + timedelta(days=offset) for offset in range(1, (result - start).days + 1)]
    assert sum(calendar.is_working_day(day) for day in between) == days
    if days == 0:
        assert result == start
    else:
        assert calendar.is_working_day(result)
