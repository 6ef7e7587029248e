"""Working-time deadlines: concrete SLA examples, DST days, JSON validation, and the laws that tie the two functions together."""

import time as wall_clock
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.business_calendar import WorkingCalendar, add_business_minutes, business_minutes_between

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OFFICE_HOURS = {weekday: [(time(9), time(17))] for weekday in range(5)}
SPLIT_HOURS = {weekday: [(time(8), time(12)), (time(13), time(17))] for weekday in range(5)}
SUNDAY_ALL_DAY = {6: [(time(0), time.max)]}

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Zones with hour, half-hour and midnight DST changes, and fixed quarter-hour offsets.
ZONES = [
    "UTC",
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Beirut",
    "Asia/Kolkata",
    "Asia/Kathmandu",
]


def amsterdam(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=AMSTERDAM)


def office(holidays: frozenset[date] = frozenset()) -> WorkingCalendar:
    return WorkingCalendar("Europe/Amsterdam", OFFICE_HOURS, holidays)


def clock_at(minute_of_day: int) -> time:
    return time.max if minute_of_day == 24 * 60 else time(minute_of_day // 60, minute_of_day % 60)


@st.composite
def calendars(draw: st.DrawFn, step_minutes: int = 15) -> WorkingCalendar:
    hours = {}
    for weekday in range(7):
        interval_count = draw(st.integers(0, 3))
        bound_count = 2 * interval_count
        bounds = sorted(
            draw(st.lists(st.integers(0, 24 * 60 // step_minutes), min_size=bound_count, max_size=bound_count, unique=True))
        )
        if bounds:
            hours[weekday] = [
                (clock_at(bounds[i] * step_minutes), clock_at(bounds[i + 1] * step_minutes)) for i in range(0, len(bounds), 2)
            ]
    if not hours:
        hours[draw(st.integers(0, 6))] = [(time(9), time(17))]
    holidays = draw(st.frozensets(st.dates(date(2025, 1, 1), date(2027, 12, 31)), max_size=40))
    return WorkingCalendar(draw(st.sampled_from(ZONES)), hours, holidays)


instants = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)), *map(ZoneInfo, ZONES)]),
)
minute_counts = st.one_of(
    st.integers(0, 5_000),
    st.floats(0, 5_000, allow_nan=False, allow_infinity=False),
    st.integers(0, 2_000_000),
)


# Concrete SLA examples


def test_friday_afternoon_deadline_rolls_over_the_weekend():
    deadline = add_business_minutes(amsterdam(2026, 3, 6, 16, 30), 60, office())

    assert deadline == amsterdam(2026, 3, 9, 9, 30)


def test_a_monday_holiday_pushes_the_deadline_to_tuesday():
    deadline = add_business_minutes(amsterdam(2026, 3, 6, 16, 30), 60, office(frozenset({date(2026, 3, 9)})))

    assert deadline == amsterdam(2026, 3, 10, 9, 30)


def test_counting_starts_at_the_next_opening_when_started_on_a_weekend():
    deadline = add_business_minutes(amsterdam(2026, 3, 7, 10, 0), 30, office())

    assert deadline == amsterdam(2026, 3, 9, 9, 30)


def test_the_lunch_break_does_not_count():
    calendar = WorkingCalendar("Europe/Amsterdam", SPLIT_HOURS)

    deadline = add_business_minutes(amsterdam(2026, 3, 4, 11, 30), 60, calendar)

    assert deadline == amsterdam(2026, 3, 4, 13, 30)


def test_using_up_an_interval_exactly_ends_at_closing_time():
    deadline = add_business_minutes(amsterdam(2026, 3, 6, 16, 0), 60, office())

    assert deadline == amsterdam(2026, 3, 6, 17, 0)


def test_the_deadline_is_returned_in_utc():
    deadline = add_business_minutes(amsterdam(2026, 3, 4, 10, 0), 15, office())

    assert deadline.tzinfo is UTC
    assert deadline == datetime(2026, 3, 4, 9, 15, tzinfo=UTC)


def test_start_in_another_zone_is_read_as_the_same_instant():
    start_in_new_york = datetime(2026, 3, 4, 4, 0, tzinfo=ZoneInfo("America/New_York"))

    deadline = add_business_minutes(start_in_new_york, 30, office())

    assert deadline == amsterdam(2026, 3, 4, 10, 30)


def test_zero_minutes_inside_working_time_is_the_start_itself():
    start = amsterdam(2026, 3, 4, 10, 17, 5)

    assert add_business_minutes(start, 0, office()) == start


def test_zero_minutes_outside_working_time_is_the_next_opening():
    assert add_business_minutes(amsterdam(2026, 3, 6, 17, 0), 0, office()) == amsterdam(2026, 3, 9, 9, 0)


def test_fractional_and_decimal_minutes_count_to_the_second():
    start = amsterdam(2026, 3, 4, 16, 59)

    assert add_business_minutes(start, 1.5, office()) == amsterdam(2026, 3, 5, 9, 0, 30)
    assert add_business_minutes(start, Decimal("1.5"), office()) == amsterdam(2026, 3, 5, 9, 0, 30)


def test_working_minutes_between_skip_nights_weekends_and_holidays():
    calendar = office(frozenset({date(2026, 3, 10)}))

    minutes = business_minutes_between(amsterdam(2026, 3, 6, 16, 0), amsterdam(2026, 3, 11, 10, 0), calendar)

    assert minutes == 60 + 8 * 60 + 60


def test_no_working_minutes_when_end_is_not_after_start():
    start = amsterdam(2026, 3, 4, 10, 0)

    assert business_minutes_between(start, start, office()) == 0
    assert business_minutes_between(start, start - timedelta(hours=3), office()) == 0


# DST


def test_spring_forward_sunday_lasts_23_working_hours():
    calendar = WorkingCalendar("Europe/Amsterdam", SUNDAY_ALL_DAY)

    minutes = business_minutes_between(amsterdam(2026, 3, 28, 12), amsterdam(2026, 3, 30, 12), calendar)

    assert minutes == 23 * 60
    assert add_business_minutes(amsterdam(2026, 3, 28, 12), 23 * 60, calendar) == amsterdam(2026, 3, 30, 0, 0)


def test_fall_back_sunday_lasts_25_working_hours():
    calendar = WorkingCalendar("Europe/Amsterdam", SUNDAY_ALL_DAY)

    minutes = business_minutes_between(amsterdam(2026, 10, 24, 12), amsterdam(2026, 10, 26, 12), calendar)

    assert minutes == 25 * 60
    assert add_business_minutes(amsterdam(2026, 10, 24, 12), 25 * 60, calendar) == amsterdam(2026, 10, 26, 0, 0)


def test_an_interval_across_the_spring_gap_counts_only_the_time_that_elapses():
    calendar = WorkingCalendar("Europe/Amsterdam", {6: [(time(1, 30), time(3, 30))]})

    minutes = business_minutes_between(amsterdam(2026, 3, 28), amsterdam(2026, 3, 30), calendar)

    assert minutes == 60


def test_an_interval_that_starts_inside_the_spring_gap_opens_when_the_clocks_jump():
    calendar = WorkingCalendar("Europe/Amsterdam", {6: [(time(2, 30), time(4))]})

    opening = add_business_minutes(amsterdam(2026, 3, 28), 0, calendar)

    assert opening == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert business_minutes_between(amsterdam(2026, 3, 28), amsterdam(2026, 3, 30), calendar) == 60


def test_an_interval_across_the_repeated_autumn_hour_counts_it_twice():
    calendar = WorkingCalendar("Europe/Amsterdam", {6: [(time(1), time(4))]})

    minutes = business_minutes_between(amsterdam(2026, 10, 24), amsterdam(2026, 10, 26), calendar)

    assert minutes == 4 * 60


def test_plain_time_counts_real_elapsed_time_across_dst():
    start = amsterdam(2026, 10, 25, 1, 30)

    deadline = add_business_minutes(start, 120, None)

    assert deadline == start.astimezone(UTC) + timedelta(hours=2)
    assert deadline.astimezone(AMSTERDAM).replace(tzinfo=None) == datetime(2026, 10, 25, 2, 30)


def test_half_a_year_of_sundays_loses_the_spring_hour():
    calendar = WorkingCalendar("Europe/Amsterdam", SUNDAY_ALL_DAY)

    minutes = business_minutes_between(amsterdam(2026, 1, 1), amsterdam(2026, 7, 1), calendar)

    assert minutes == 26 * 24 * 60 - 60


# Long deadlines


def test_a_million_minutes_is_fast_and_exact():
    calendar = WorkingCalendar("UTC", OFFICE_HOURS)
    monday_morning = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    started = wall_clock.perf_counter()
    deadline = add_business_minutes(monday_morning, 1_000_000, calendar)
    elapsed = wall_clock.perf_counter() - started

    # 2400 working minutes a week: 416 whole weeks, then Monday to Wednesday (1440) and 160 minutes on Thursday.
    assert deadline == monday_morning + timedelta(weeks=416, days=3, minutes=160)
    assert elapsed < 0.05


def test_a_million_minutes_through_dst_and_holidays_is_fast_and_round_trips():
    holidays = frozenset(date(year, month, 1) for year in range(2026, 2036) for month in range(1, 13))
    calendar = WorkingCalendar("Europe/Amsterdam", SPLIT_HOURS, holidays)
    start = amsterdam(2026, 1, 7, 15, 45)

    started = wall_clock.perf_counter()
    deadline = add_business_minutes(start, 1_000_000, calendar)
    minutes = business_minutes_between(start, deadline, calendar)
    elapsed = wall_clock.perf_counter() - started

    assert minutes == pytest.approx(1_000_000, abs=1e-6)
    assert elapsed < 0.1


# Input validation


def test_negative_minutes_are_rejected():
    with pytest.raises(ValueError, match="must not be negative"):
        add_business_minutes(amsterdam(2026, 3, 4, 10), -1, office())


def test_non_finite_minutes_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        add_business_minutes(amsterdam(2026, 3, 4, 10), float("inf"), office())


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(datetime(2026, 3, 4, 10), 5, office())
    with pytest.raises(ValueError, match="timezone-aware"):
        business_minutes_between(amsterdam(2026, 3, 4, 10), datetime(2026, 3, 5), None)


def test_an_interval_ending_at_midnight_written_as_time_zero_is_rejected():
    with pytest.raises(ValueError, match="must start before it ends"):
        WorkingCalendar("UTC", {0: [(time(9), time(0))]})


def test_overlapping_intervals_are_rejected_by_the_constructor():
    with pytest.raises(ValueError, match="overlap"):
        WorkingCalendar("UTC", {0: [(time(9), time(13)), (time(12), time(17))]})


def test_unknown_time_zone_is_rejected():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        WorkingCalendar("Mars/Olympus", OFFICE_HOURS)


def test_equal_calendars_compare_and_hash_equal_whatever_the_interval_order():
    forwards = WorkingCalendar("UTC", {0: [(time(8), time(12)), (time(13), time(17))], 1: []})
    backwards = WorkingCalendar("UTC", {0: [(time(13), time(17)), (time(8), time(12))]})

    assert forwards == backwards
    assert hash(forwards) == hash(backwards)


def test_from_json_reads_the_stored_shape():
    calendar = WorkingCalendar.from_json(
        "Europe/Amsterdam",
        {"0": [["09:00", "17:00"]], 1: [["13:00", "17:00"], ["08:00", "12:00"]], "6": [["00:00", "24:00"]], "2": []},
        ["2026-12-25", date(2026, 12, 26)],
    )

    assert calendar == WorkingCalendar(
        "Europe/Amsterdam",
        {0: [(time(9), time(17))], 1: [(time(8), time(12)), (time(13), time(17))], 6: [(time(0), time.max)]},
        frozenset({date(2026, 12, 25), date(2026, 12, 26)}),
    )


@pytest.mark.parametrize(
    ("hours", "holidays", "problem"),
    [
        ({"0": [["09:00", "25:00"]]}, [], r"'25:00' is not a valid time of day"),
        ({"0": [["nine", "17:00"]]}, [], r"'nine' is not a time of day"),
        ({"0": [["24:00", "24:00"]]}, [], r"'24:00' can only end an interval"),
        ({"0": [["17:00", "09:00"]]}, [], r"weekday 0: interval 17:00-09:00 must start before it ends"),
        ({"0": [["09:00", "09:00"]]}, [], r"weekday 0: interval 09:00-09:00 must start before it ends"),
        ({"1": [["08:00", "12:30"], ["12:00", "17:00"]]}, [], r"weekday 1: intervals 08:00-12:30 and 12:00-17:00 overlap"),
        ({"7": [["09:00", "17:00"]]}, [], r"weekday 7 is outside 0\.\.6"),
        ({"monday": [["09:00", "17:00"]]}, [], r"weekday key 'monday'"),
        ({"1": [["09:00", "17:00"]], 1: [["10:00", "11:00"]]}, [], r"weekday 1 is given more than once"),
        ({"0": [], "3": []}, [], r"no working time on any weekday"),
        ({}, [], r"no working time on any weekday"),
        ({"0": [["09:00"]]}, [], r"must be a \[start, end\] pair"),
        ({"0": "09:00-17:00"}, [], r"intervals must be a list"),
        ({"0": [["09:00", "17:00"]]}, ["2026-02-30"], r"holiday '2026-02-30' is not an ISO date"),
    ],
)
def test_from_json_rejects_malformed_input_naming_the_problem(hours, holidays, problem):
    with pytest.raises(ValueError, match=problem):
        WorkingCalendar.from_json("Europe/Amsterdam", hours, holidays)


# Laws


@PROPERTY_SETTINGS
@given(calendar=calendars(), start=instants, minutes=minute_counts)
def test_counting_back_the_working_minutes_to_a_deadline_gives_the_minutes_added(calendar, start, minutes):
    deadline = add_business_minutes(start, minutes, calendar)

    assert business_minutes_between(start, deadline, calendar) == pytest.approx(minutes, abs=1e-6)


@PROPERTY_SETTINGS
@given(calendar=calendars(), start=instants, fewer=minute_counts, extra=minute_counts)
def test_more_minutes_never_give_an_earlier_deadline(calendar, start, fewer, extra):
    assert add_business_minutes(start, fewer, calendar) <= add_business_minutes(start, fewer + extra, calendar)


@PROPERTY_SETTINGS
@given(calendar=calendars(), start=instants, delay_minutes=st.integers(0, 20_000), minutes=minute_counts)
def test_a_later_start_never_gives_an_earlier_deadline(calendar, start, delay_minutes, minutes):
    later_start = start.astimezone(UTC) + timedelta(minutes=delay_minutes)

    assert add_business_minutes(start, minutes, calendar) <= add_business_minutes(later_start, minutes, calendar)


@PROPERTY_SETTINGS
@given(calendar=calendars(), start=instants)
def test_zero_minutes_give_the_first_working_moment_at_or_after_start(calendar, start):
    opening = add_business_minutes(start, 0, calendar)

    assert opening >= start
    assert business_minutes_between(start, opening, calendar) == 0
    assert business_minutes_between(opening, opening + timedelta(microseconds=1), calendar) > 0


@PROPERTY_SETTINGS
@given(calendar=calendars(), start=instants, first_gap=st.integers(0, 60 * 24 * 40), second_gap=st.integers(0, 60 * 24 * 40))
def test_working_minutes_add_up_over_consecutive_spans(calendar, start, first_gap, second_gap):
    middle = start.astimezone(UTC) + timedelta(minutes=first_gap)
    end = middle + timedelta(minutes=second_gap)

    whole = business_minutes_between(start, end, calendar)
    parts = business_minutes_between(start, middle, calendar) + business_minutes_between(middle, end, calendar)

    assert whole == pytest.approx(parts, abs=1e-6)


@PROPERTY_SETTINGS
@given(start=instants, minutes=minute_counts, other_zone=st.sampled_from([UTC, AMSTERDAM, ZoneInfo("Asia/Kathmandu")]))
def test_without_a_calendar_time_is_plain_elapsed_time(start, minutes, other_zone):
    deadline = add_business_minutes(start, minutes, None)

    assert deadline == start.astimezone(UTC) + timedelta(minutes=minutes)
    assert deadline.tzinfo is UTC
    assert business_minutes_between(start, deadline.astimezone(other_zone), None) == pytest.approx(minutes, abs=1e-6)


@PROPERTY_SETTINGS
@given(
    calendar=calendars(step_minutes=60),
    first_quarter=st.integers(0, 3 * 365 * 96),
    quarters=st.integers(0, 10 * 96),
)
def test_working_minutes_match_reading_the_local_clock_every_quarter_hour(calendar, first_quarter, quarters):
    # With whole-hour opening times, working time only begins or ends on UTC quarter hours in these zones,
    # so each quarter hour is either wholly working or wholly closed, judged by the local clock at its start.
    zone = ZoneInfo(calendar.timezone)
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * first_quarter)
    quarter_starts = [start + timedelta(minutes=15 * i) for i in range(quarters)]

    def is_working(moment: datetime) -> bool:
        local = moment.astimezone(zone)
        if local.date() in calendar.holidays:
            return False
        return any(
            opens <= local.time() and (closes == time.max or local.time() < closes)
            for opens, closes in calendar.hours.get(local.weekday(), [])
        )

    expected = 15 * sum(map(is_working, quarter_starts))

    assert business_minutes_between(start, start + timedelta(minutes=15 * quarters), calendar) == expected
