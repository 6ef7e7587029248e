"""The business calendar, as people edit it in the admin; the arithmetic is in business_calendar.

A calendar's holidays are its country's public holidays, as the holidays package knows them, plus
the days people add to it. The package computes holidays a year at a time, so whoever builds a
``WorkingCalendar`` names the years its arithmetic can reach, and a year is computed once per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.db import models
from holidays import country_holidays, list_supported_countries

from .business_calendar import WorkingCalendar

# Whole days, so a calendar built from it counts days, never minutes.
MONDAY_TO_FRIDAY = {weekday: [(time(0), time.max)] for weekday in range(5)}


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
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. NL: its public holidays are closed days.")
    subdivision = models.CharField(
        max_length=32,
        blank=True,
        help_text="Optional state, province or region (ISO 3166-2 code without the country, e.g. SCT for Scotland) "
        "whose own public holidays are closed too.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def working_calendar(self, *, years: Iterable[int]) -> WorkingCalendar:
        """The hours with every holiday in ``years``: the public ones and the ones added here.

        Holidays outside ``years`` are not known to the result, so name every year the arithmetic
        can reach. The days added here are all included whatever the years; there are few of them.
        """
        added = [holiday.date for holiday in self.holidays.all()] if self.pk else []
        closed = public_holidays(self.country, self.subdivision, years).union(added)
        return WorkingCalendar.from_json(self.timezone, self.hours, closed)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            WorkingCalendar.from_json(self.timezone, self.hours, [])
        except (ValueError, KeyError) as exc:
            errors["hours"] = str(exc)
        if self.country:  # an empty country is refused as a blank field already
            try:
                self.country, self.subdivision = holiday_region(self.country, self.subdivision)
            except ValidationError as error:
                errors.update({field: " ".join(messages) for field, messages in error.message_dict.items()})
        if errors:
            raise ValidationError(errors)


class Holiday(models.Model):
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_per_calendar")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


def holiday_region(country: str, subdivision: str = "") -> tuple[str, str]:
    """``(country, subdivision)`` spelt the way the holidays package spells them.

    People type codes in any case and may name a subdivision by its alias ("Scotland" for SCT).
    Raises ValidationError keyed by the field at fault, with what would have been accepted.
    """
    code = country.strip().upper()
    if code not in list_supported_countries(include_aliases=False):
        if code in list_supported_countries(include_aliases=True):
            canonical = country_holidays(code).country
            message = f"'{code}' stands for {canonical}; use the ISO 3166-1 alpha-2 code {canonical}."
        else:
            message = (
                f"'{code}' is not a country whose public holidays are known; use an ISO 3166-1 alpha-2 code such as NL, GB or US."
            )
        raise ValidationError({"country": message})
    wanted = subdivision.strip()
    if not wanted:
        return code, ""
    entity = country_holidays(code)
    if not entity.subdivisions:
        raise ValidationError({"subdivision": f"{code} has no subdivisions with holidays of their own; leave it empty."})
    spellings = {name.casefold(): name for name in entity.subdivisions}
    spellings.update({alias.casefold(): name for alias, name in entity.subdivisions_aliases.items()})
    if wanted.casefold() not in spellings:
        raise ValidationError(
            {
                "subdivision": f"'{wanted}' is not a subdivision of {code} whose holidays are known; "
                f"use one of {', '.join(sorted(entity.subdivisions))}, or leave it empty."
            }
        )
    return code, spellings[wanted.casefold()]


def public_holidays(country: str, subdivision: str, years: Iterable[int]) -> frozenset[date]:
    """The public holidays of a country, or of one of its subdivisions, in ``years`` (observed days included).

    A country the package does not know has none, and an unknown subdivision adds none: sites and
    order addresses are not checked against the package, and a promise or a deadline must still
    come out for them.
    """
    region = _known_region(country, subdivision)
    if region is None:
        return frozenset()
    return frozenset().union(*(_public_holidays_in(*region, year) for year in set(years)))


def public_holiday_names(country: str, subdivision: str, years: Iterable[int]) -> list[tuple[date, str]]:
    """The public holidays in ``years`` with their names, in date order, for people checking a calendar."""
    region = _known_region(country, subdivision)
    if region is None:
        return []
    code, subdiv = region
    return sorted(country_holidays(code, subdiv=subdiv or None, years=sorted(set(years))).items())


def country_working_calendar(country: str, years: Iterable[int]) -> WorkingCalendar:
    """Monday to Friday without the country's public holidays in ``years``: the working days of a
    place that has no business calendar of its own. Its hours are whole days, for counting days."""
    return _country_working_calendar(country.strip().upper(), frozenset(years))


@lru_cache(maxsize=1024)
def _known_region(country: str, subdivision: str) -> tuple[str, str] | None:
    """The package's (country, subdivision) for stored codes, or None for a country it does not know."""
    code = country.strip().upper()
    if code not in list_supported_countries(include_aliases=True):
        return None
    region = subdivision.strip()
    return code, region if region in country_holidays(code).subdivisions else ""


@lru_cache(maxsize=1024)
def _public_holidays_in(country: str, subdivision: str, year: int) -> frozenset[date]:
    """A package release's rules do not change while the process runs, so each year is computed once."""
    return frozenset(country_holidays(country, subdiv=subdivision or None, years=year).keys())


@lru_cache(maxsize=256)
def _country_working_calendar(country: str, years: frozenset[int]) -> WorkingCalendar:
    return WorkingCalendar("UTC", MONDAY_TO_FRIDAY, public_holidays(country, "", years))
