"""SLA clocks on a business calendar skip its country's public holidays and the days people add."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import time_machine

from core.models import BusinessCalendar, Holiday
from exceptions.models import ExceptionEvent
from exceptions.services import exception_resume, exception_wait
from tests.factories import TEST_ACTOR, raise_on_order

pytestmark = pytest.mark.django_db
CEST = timezone(timedelta(hours=2))
CET = timezone(timedelta(hours=1))


def office() -> BusinessCalendar:
    """credit_hold is a financial type: its seeded policies run on office hours (Mon–Fri 08–18, Amsterdam)."""
    return BusinessCalendar.objects.get(name="Office hours (Amsterdam)")


def resolution_due(detected_at: datetime) -> datetime:
    exception = raise_on_order("credit_hold", detected_at=detected_at)
    assert exception.sla_policy.calendar == office() and exception.sla_policy.resolve_minutes == 1440
    return exception.due_at


def test_kings_day_does_not_count():
    # Fri 24 Apr 16:30: 90 minutes; Mon 27 Apr is King's Day; 600 on Tue and Wed; the last 150 on Thu from 08:00.
    assert resolution_due(datetime(2026, 4, 24, 16, 30, tzinfo=CEST)) == datetime(2026, 4, 30, 10, 30, tzinfo=CEST)


def test_christmas_and_boxing_day_do_not_count():
    # Thu 24 Dec 16:30: 90 minutes; Fri 25 Dec is Christmas (26 Dec a Saturday); 600 on Mon and Tue; 150 on Wed 30 Dec.
    assert resolution_due(datetime(2026, 12, 24, 16, 30, tzinfo=CET)) == datetime(2026, 12, 30, 10, 30, tzinfo=CET)


def test_a_deadline_that_crosses_new_year_skips_the_next_years_holiday():
    # Thu 31 Dec 16:30: 90 minutes; Fri 1 Jan 2027 is New Year's Day; 600 on Mon 4 and Tue 5; 150 on Wed 6 Jan.
    assert resolution_due(datetime(2026, 12, 31, 16, 30, tzinfo=CET)) == datetime(2027, 1, 6, 10, 30, tzinfo=CET)


def test_a_day_people_add_is_skipped_as_well_as_the_public_holiday():
    Holiday.objects.create(calendar=office(), date=date(2026, 4, 28), name="Company day")

    # King's Day on Monday and the company day on Tuesday: 600 on Wed and Thu, the last 150 on Fri 1 May.
    assert resolution_due(datetime(2026, 4, 24, 16, 30, tzinfo=CEST)) == datetime(2026, 5, 1, 10, 30, tzinfo=CEST)


def test_a_paused_clock_gives_back_no_time_for_a_public_holiday():
    with time_machine.travel(datetime(2026, 4, 24, 15, 0, tzinfo=UTC), tick=False):  # Fri 17:00 in Amsterdam
        exception = raise_on_order("credit_hold")
        exception_wait(exception=exception, note="asked the bank", actor=TEST_ACTOR)
    # Fri 60 minutes, King's Day, Tue and Wed 600 each, Thu 180: due Thu 30 Apr 11:00.
    assert exception.due_at == datetime(2026, 4, 30, 11, 0, tzinfo=CEST)

    with time_machine.travel(datetime(2026, 4, 28, 7, 0, tzinfo=UTC), tick=False):  # Tue 09:00 in Amsterdam
        exception_resume(exception=exception, actor=TEST_ACTOR)

    # Friday 17:00–18:00 and Tuesday 08:00–09:00; Monday was King's Day.
    resumed = ExceptionEvent.objects.get(exception=exception, action="resume")
    assert resumed.data["paused_minutes"] == 120.0
    exception.refresh_from_db()
    assert exception.due_at == datetime(2026, 4, 30, 13, 0, tzinfo=CEST)
