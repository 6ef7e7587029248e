"""The business calendar, as people edit it in the admin; the arithmetic is in business_calendar."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from .business_calendar import WorkingCalendar


class BusinessCalendar(models.Model):
    """Working hours per weekday and holidays; a clock on such a calendar counts only working time."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Amsterdam.")
    hours = models.JSONField(
        default=dict,
        help_text=(
            'Weekday (0 = Monday) to working intervals, e.g. {"0": [["09:00", "17:00"]], '
            '"1": [["08:00", "12:00"], ["13:00", "17:00"]]}.'
        ),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def working_calendar(self) -> WorkingCalendar:
        return WorkingCalendar.from_json(self.timezone, self.hours, [h.date for h in self.holidays.all()])

    def clean(self) -> None:
        try:
            WorkingCalendar.from_json(self.timezone, self.hours, [])
        except (ValueError, KeyError) as exc:
            raise ValidationError({"hours": str(exc)}) from None


class Holiday(models.Model):
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_per_calendar")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"
