"""Business-time arithmetic for SLA deadlines and promised dates.

An SLA promises a reaction within so many *working* minutes, so a deadline has to skip nights,
weekends and holidays of the calendar it is measured against. Working hours are wall-clock times
in the calendar's own time zone, yet the time that counts is the time that really elapses: a
working day that contains a DST change lasts 23 or 25 hours. Everything is therefore computed on
UTC instants, and results are returned in UTC so they can be stored and compared without surprises.

Long deadlines are computed a week at a time: an ordinary week always holds the same amount of
working time, so only weeks with a DST change and the partial weeks at either end are walked day
by day. Holidays are subtracted from a week without walking it.

Promised ship and arrival dates count whole working days instead of minutes: a day is a working
day when its weekday has working hours and it is not a holiday.

The module depends on the standard library only, so it can be imported without Django settings.
Holidays arrive as plain dates; whoever builds a calendar decides which years of them it needs.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from numbers import Real
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WorkingCalendar", "add_business_minutes", "business_minutes_between"]

Interval = tuple[time, time]

_MICROSECONDS_PER_MINUTE = 60_000_000
_MICROSECONDS_PER_DAY = 86_400_000_000
_ONE_MICROSECOND = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
_ONE_WEEK = timedelta(days=7)
_MIDNIGHT = time()
_CLOCK_TEXT = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_WEEKDAY_TEXT = re.compile(r"[+-]?\d+")


class _NominalWeek(NamedTuple):
    begins: datetime
    ends: datetime
    working_us: int


@dataclass(frozen=True)
class WorkingCalendar:
    """Opening hours in one time zone, plus the local dates that are closed all day.

    ``hours`` maps a weekday (Monday=0 .. Sunday=6) to working intervals in local wall-clock time.
    An interval is open from the first moment the local clock shows its start until the first
    moment it shows its end. ``time.max`` as an end stands for the midnight that ends the day, so
    ``(time(0), time.max)`` is the whole day: 24 hours normally, 23 or 25 on a DST-change day. No
    other end is special: ``time(0)`` as an end is simply before any start and is rejected.

    Every calendar is validated on construction (start before end, no overlapping intervals,
    weekdays 0..6, a known time zone, some working time in the week) because the arithmetic relies
    on it: overlaps would count time twice and a week without working time would never reach a
    deadline. Intervals are stored sorted, so equal calendars compare equal.
    """

    timezone: str
    hours: dict[int, list[Interval]] = field(hash=False)
    holidays: frozenset[date] = frozenset()

    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _day_offsets_us: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)
    _day_length_us: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _week_length_us: int = field(init=False, repr=False, compare=False)
    _holiday_ordinals: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = _zone_named(self.timezone)
        hours = _validated_hours(self.hours)
        holidays = _validated_holidays(self.holidays)
        day_offsets_us = tuple(
            tuple((_offset_us(start), _offset_us(end)) for start, end in hours.get(weekday, ())) for weekday in range(7)
        )
        day_length_us = tuple(sum(end - start for start, end in offsets) for offsets in day_offsets_us)
        if not any(day_length_us):
            raise ValueError("the calendar has no working time on any weekday, so no deadline could ever be reached")
        object.__setattr__(self, "hours", hours)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_day_offsets_us", day_offsets_us)
        object.__setattr__(self, "_day_length_us", day_length_us)
        object.__setattr__(self, "_week_length_us", sum(day_length_us))
        object.__setattr__(self, "_holiday_ordinals", tuple(sorted(day.toordinal() for day in holidays)))

    @classmethod
    def from_json(
        cls,
        timezone: str,
        hours: Mapping[str | int, Any],
        holidays: Iterable[date | str] = (),
    ) -> WorkingCalendar:
        """Build a calendar from the shape stored in a JSONField.

        ``hours`` looks like ``{"0": [["09:00", "17:00"]], "1": [["08:00", "12:00"], ["13:00", "17:00"]]}``:
        keys are weekday numbers as strings or ints, times are ``HH:MM`` or ``HH:MM:SS``, and ``"24:00"``
        may end an interval to mean the end of the day. Holidays are dates or ISO ``YYYY-MM-DD`` strings.
        Stored data is edited by people, so every rejection is a ValueError that names the culprit.
        """
        if not isinstance(hours, Mapping):
            raise ValueError(f"hours must be an object mapping weekday numbers to intervals, not {type(hours).__name__}")
        parsed_hours: dict[int, list[Interval]] = {}
        for key, intervals in hours.items():
            weekday = _parse_weekday(key)
            if weekday in parsed_hours:
                raise ValueError(f"weekday {weekday} is given more than once")
            parsed_hours[weekday] = _parse_intervals(weekday, intervals)
        if isinstance(holidays, (str, bytes)):
            raise ValueError("holidays must be a list of dates, not a single string")
        parsed_holidays = frozenset(_parse_holiday(holiday) for holiday in holidays)
        return cls(timezone=timezone, hours=parsed_hours, holidays=parsed_holidays)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` (a local date) has working hours on its weekday and is not a holiday."""
        return bool(self._day_offsets_us[day.weekday()]) and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The local date on which the ``days``-th working day after ``start`` falls.

        ``start`` itself never counts, whether or not it is a working day, so ``days == 0`` returns
        ``start`` unchanged. The walk always ends: validation guarantees a working weekday, and
        holidays are a finite set.
        """
        if isinstance(start, datetime) or not isinstance(start, date):
            raise TypeError(f"start must be a datetime.date (a local calendar day), not {type(start).__name__}")
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError(f"days must be a whole number, not {type(days).__name__}")
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        day = start
        while days:
            day += _ONE_DAY
            if self.is_working_day(day):
                days -= 1
        return day

    def _spans_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """Working spans of one local date as UTC instants, in order.

        Days whose UTC offset is the same at both midnights are laid out by plain arithmetic; only a
        day with a DST change needs each interval end resolved against the time zone.
        """
        offsets_us = self._day_offsets_us[day.weekday()]
        if not offsets_us or day in self.holidays:
            return []
        offset = self._offset_at_midnight(day)
        if offset == self._offset_at_midnight(day + _ONE_DAY):
            midnight = datetime.combine(day, _MIDNIGHT, tzinfo=UTC) - offset
            return [
                (midnight + timedelta(microseconds=start), midnight + timedelta(microseconds=end)) for start, end in offsets_us
            ]
        local_midnight = datetime.combine(day, _MIDNIGHT)
        return [
            (
                self._first_instant_showing(local_midnight + timedelta(microseconds=start)),
                self._first_instant_showing(local_midnight + timedelta(microseconds=end)),
            )
            for start, end in offsets_us
        ]

    def _nominal_week(self, first_day: date) -> _NominalWeek | None:
        """The seven days from ``first_day`` as one block, or None when a DST change falls inside them.

        Without a UTC offset change every interval lasts exactly its wall-clock length, so the week's
        working time is the weekly total minus its holidays and the week can be skipped in one step.
        """
        first_ordinal = first_day.toordinal()
        utcoffset = self._zone.utcoffset
        offset = utcoffset(datetime.fromordinal(first_ordinal))
        for ordinal in range(first_ordinal + 1, first_ordinal + 8):
            if utcoffset(datetime.fromordinal(ordinal)) != offset:
                return None
        begins = datetime.combine(first_day, _MIDNIGHT, tzinfo=UTC) - offset
        working_us = self._week_length_us - self._holiday_length_us(first_day, first_day + _ONE_WEEK)
        return _NominalWeek(begins=begins, ends=begins + _ONE_WEEK, working_us=working_us)

    def _holiday_length_us(self, first_day: date, stop_day: date) -> int:
        """Working time that holidays in [first_day, stop_day) remove, without visiting each day."""
        ordinals = self._holiday_ordinals
        first = bisect_left(ordinals, first_day.toordinal())
        stop = bisect_left(ordinals, stop_day.toordinal(), first)
        return sum(self._day_length_us[(ordinal + 6) % 7] for ordinal in ordinals[first:stop])

    def _offset_at_midnight(self, day: date) -> timedelta:
        return self._zone.utcoffset(datetime.fromordinal(day.toordinal()))

    def _day_begins(self, day: date) -> datetime:
        """First instant of a local date; nothing scheduled on that date or later can start before it."""
        local_midnight = datetime.fromordinal(day.toordinal())
        offset = self._zone.utcoffset(local_midnight)
        if offset == self._zone.utcoffset(local_midnight.replace(fold=1)):
            return local_midnight.replace(tzinfo=UTC) - offset
        return self._first_instant_showing(local_midnight)

    def _first_instant_showing(self, local: datetime) -> datetime:
        """The first instant at which the local clock shows ``local`` or later, in UTC.

        A repeated wall time (clocks going back) resolves to its first occurrence. A wall time that
        never happens (clocks going forward) resolves to the transition itself, the first moment the
        clock shows a later time; this keeps the mapping monotonic, so intervals never turn negative
        or overlap, and an interval across the gap lasts exactly the time that really elapses.
        """
        earliest_guess = local.replace(tzinfo=self._zone)
        instant = earliest_guess.astimezone(UTC)
        if instant.astimezone(self._zone).replace(tzinfo=None) == local:
            return instant
        other = local.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        clock_before = math.floor(min(instant, other).timestamp())
        clock_after = math.ceil(max(instant, other).timestamp())
        while clock_after - clock_before > 1:
            middle = (clock_before + clock_after) // 2
            if datetime.fromtimestamp(middle, self._zone).replace(tzinfo=None) >= local:
                clock_after = middle
            else:
                clock_before = middle
        return datetime.fromtimestamp(clock_after, UTC)


def add_business_minutes(start: datetime, minutes: float | int | Decimal, calendar: WorkingCalendar | None) -> datetime:
    """The deadline ``minutes`` of working time after ``start``, as an aware UTC datetime.

    The result is the earliest instant by which that much working time has elapsed, so a deadline
    that uses up an interval exactly lands on the interval's end (Friday 16:00 + 60 minutes with
    09:00-17:00 hours is Friday 17:00, not Monday 09:00). Time before the first working moment at
    or after ``start`` counts nothing. ``minutes == 0`` returns that first working moment: ``start``
    itself during working time, otherwise the next opening; it answers "when does the clock start".

    Without a calendar, ``minutes`` is plain elapsed time: ``start + timedelta(minutes=minutes)``
    computed in UTC, so a DST change in ``start``'s own zone does not add or lose an hour.

    Raises ValueError for a naive ``start`` and for negative or non-finite ``minutes``, and
    OverflowError when the deadline would fall after the year 9999.
    """
    origin = _as_utc(start, "start")
    remaining_us = _minutes_as_microseconds(minutes)
    if calendar is None:
        return origin + timedelta(minutes=float(minutes))
    day = origin.astimezone(calendar._zone).date()
    while True:
        if remaining_us > calendar._week_length_us:
            week = calendar._nominal_week(day)
            if week is not None and week.begins >= origin:
                remaining_us -= week.working_us
                day += _ONE_WEEK
                continue
        for span_start, span_end in calendar._spans_on(day):
            opens = max(span_start, origin)
            if span_end <= opens:
                continue
            if remaining_us == 0:
                return opens
            available_us = (span_end - opens) // _ONE_MICROSECOND
            if remaining_us <= available_us:
                return opens + timedelta(microseconds=remaining_us)
            remaining_us -= available_us
        day += _ONE_DAY


def business_minutes_between(start: datetime, end: datetime, calendar: WorkingCalendar | None) -> float:
    """Working minutes in ``[start, end)``; 0.0 when ``end`` is not after ``start``.

    This is the inverse of ``add_business_minutes``: for any ``minutes >= 0``,
    ``business_minutes_between(start, add_business_minutes(start, minutes, cal), cal) == minutes``
    up to microsecond rounding. Without a calendar it is the plain elapsed time between the two
    instants, whatever zones they are expressed in.
    """
    begin = _as_utc(start, "start")
    finish = _as_utc(end, "end")
    if finish <= begin:
        return 0.0
    if calendar is None:
        return (finish - begin) / timedelta(minutes=1)
    total_us = 0
    day = begin.astimezone(calendar._zone).date()
    while True:
        day_begins = calendar._day_begins(day)
        if day_begins >= finish:
            break
        if day_begins >= begin and day_begins + _ONE_WEEK <= finish:
            week = calendar._nominal_week(day)
            if week is not None:
                total_us += week.working_us
                day += _ONE_WEEK
                continue
        for span_start, span_end in calendar._spans_on(day):
            overlap = min(span_end, finish) - max(span_start, begin)
            if overlap > timedelta(0):
                total_us += overlap // _ONE_MICROSECOND
        day += _ONE_DAY
    return total_us / _MICROSECONDS_PER_MINUTE


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _minutes_as_microseconds(minutes: float | int | Decimal) -> int:
    """Microseconds are the resolution of datetime, so counting in them keeps round trips exact."""
    if isinstance(minutes, bool) or not isinstance(minutes, (Real, Decimal)):
        raise TypeError(f"minutes must be a number, not {type(minutes).__name__}")
    if not math.isfinite(minutes):
        raise ValueError(f"minutes must be finite, got {minutes}")
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, got {minutes}")
    return round(minutes * _MICROSECONDS_PER_MINUTE)


def _zone_named(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f"timezone must be an IANA time zone name such as 'Europe/Amsterdam', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def _offset_us(moment: time) -> int:
    """Position of a wall-clock time within its day; ``time.max`` is the midnight that ends the day."""
    if moment == time.max:
        return _MICROSECONDS_PER_DAY
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond


def _clock(moment: time) -> str:
    if moment == time.max:
        return "24:00"
    return moment.isoformat(timespec="minutes" if not (moment.second or moment.microsecond) else "auto")


def _validated_hours(hours: object) -> dict[int, list[Interval]]:
    if not isinstance(hours, Mapping):
        raise ValueError(f"hours must map weekday numbers to lists of intervals, not {type(hours).__name__}")
    validated: dict[int, list[Interval]] = {}
    for weekday, intervals in hours.items():
        if isinstance(weekday, bool) or not isinstance(weekday, int):
            raise ValueError(f"weekday {weekday!r} must be an integer 0..6 (Monday=0 .. Sunday=6)")
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {weekday} is outside 0..6 (Monday=0 .. Sunday=6)")
        if isinstance(intervals, (str, bytes)) or not isinstance(intervals, Iterable):
            raise ValueError(f"weekday {weekday}: intervals must be a list of (start, end) pairs, got {intervals!r}")
        checked = sorted(_validated_interval(weekday, interval) for interval in intervals)
        for (earlier_start, earlier_end), (later_start, later_end) in pairwise(checked):
            if later_start < earlier_end:
                raise ValueError(
                    f"weekday {weekday}: intervals {_clock(earlier_start)}-{_clock(earlier_end)} and "
                    f"{_clock(later_start)}-{_clock(later_end)} overlap"
                )
        if checked:
            validated[weekday] = checked
    return validated


def _validated_interval(weekday: int, interval: object) -> Interval:
    if isinstance(interval, (str, bytes)) or not isinstance(interval, Iterable):
        raise ValueError(f"weekday {weekday}: interval {interval!r} must be a (start, end) pair")
    pair = tuple(interval)
    if len(pair) != 2:
        raise ValueError(f"weekday {weekday}: interval {interval!r} must be a (start, end) pair")
    start, end = pair
    for moment in pair:
        if not isinstance(moment, time):
            raise ValueError(f"weekday {weekday}: interval bound {moment!r} must be a datetime.time")
        if moment.tzinfo is not None:
            raise ValueError(f"weekday {weekday}: interval bound {moment} must be a local time without tzinfo")
    if start >= end:
        raise ValueError(
            f"weekday {weekday}: interval {_clock(start)}-{_clock(end)} must start before it ends "
            "(use time.max, or '24:00' in JSON, to work until midnight)"
        )
    return start, end


def _validated_holidays(holidays: object) -> frozenset[date]:
    if isinstance(holidays, (str, bytes)) or not isinstance(holidays, Iterable):
        raise ValueError(f"holidays must be a collection of dates, got {holidays!r}")
    validated = frozenset(holidays)
    for holiday in validated:
        if isinstance(holiday, datetime) or not isinstance(holiday, date):
            raise ValueError(f"holiday {holiday!r} must be a datetime.date (a local calendar day)")
    return validated


def _parse_weekday(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        weekday = key
    elif isinstance(key, str) and _WEEKDAY_TEXT.fullmatch(key.strip()):
        weekday = int(key)
    else:
        raise ValueError(f"weekday key {key!r} must be a weekday number 0..6 (Monday=0 .. Sunday=6)")
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday {weekday} is outside 0..6 (Monday=0 .. Sunday=6)")
    return weekday


def _parse_intervals(weekday: int, intervals: object) -> list[Interval]:
    if not isinstance(intervals, (list, tuple)):
        raise ValueError(f"weekday {weekday}: intervals must be a list of [start, end] pairs, got {intervals!r}")
    parsed = []
    for interval in intervals:
        if not isinstance(interval, (list, tuple)) or len(interval) != 2:
            raise ValueError(f"weekday {weekday}: interval {interval!r} must be a [start, end] pair")
        start, end = interval
        parsed.append((_parse_clock(weekday, start, may_end_day=False), _parse_clock(weekday, end, may_end_day=True)))
    return parsed


def _parse_clock(weekday: int, text: object, *, may_end_day: bool) -> time:
    match = _CLOCK_TEXT.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"weekday {weekday}: {text!r} is not a time of day in HH:MM form")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if (hour, minute, second) == (24, 0, 0):
        if not may_end_day:
            raise ValueError(f"weekday {weekday}: {text!r} can only end an interval, not start one")
        return time.max
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"weekday {weekday}: {text!r} is not a valid time of day (00:00 to 24:00)")
    return time(hour, minute, second)


def _parse_holiday(holiday: object) -> date:
    if isinstance(holiday, str):
        try:
            return date.fromisoformat(holiday.strip())
        except ValueError as error:
            raise ValueError(f"holiday {holiday!r} is not an ISO date (YYYY-MM-DD)") from error
    if isinstance(holiday, date) and not isinstance(holiday, datetime):
        return holiday
    raise ValueError(f"holiday {holiday!r} must be a date or an ISO date string (YYYY-MM-DD)")
