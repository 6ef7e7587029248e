"""Finding orders: the list's filters and sorts, and what a person types into the search box.

Every condition on lines, shipments or exceptions is an EXISTS subquery, so an order matches once
however many of its lines or shipments do, and the list needs no DISTINCT.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.listing import Sort, Sorts
from exceptions.models import OPEN_STATUSES, FulfillmentException
from inventory.models import Location

from . import measures
from .models import Order, OrderLine, OrderStatus, Partner, Shipment

DEFAULT_PAGE_SIZE = 50
# "#123" or "E123": an exception's number as the queue and the exception page show it.
EXCEPTION_NUMBER = re.compile(r"^(?:#|[eE])\s*(\d{1,9})$")
BARE_NUMBER = re.compile(r"^\d{1,9}$")


# --- the search box ------------------------------------------------------------------------------------


# A search finds at most this many orders; beyond it a person narrows the term rather than pages.
SEARCH_LIMIT = 1000


def order_ids_matching(term: str, *, limit: int = SEARCH_LIMIT) -> list[int]:
    """Orders a person means by `term`: the order's number (alone, or after its partner's code as in
    "NW/NW-11032" or "NW NW-11032"), the customer's name or email, a SKU on one of its lines, or a
    shipment's tracking number.

    One query, a UNION of lookups that each have an index (upper-case expressions, trigrams for the name and
    email on PostgreSQL), so a search costs the same in a year's orders as in a day's."""
    term = term.strip()
    if not term:
        return []
    arms = [Order.objects.filter(external_id__iexact=term)]
    partner_code, separator, external_id = _split_partner(term)
    if separator:
        arms.append(Order.objects.filter(partner__code__iexact=partner_code, external_id__iexact=external_id))
    if "@" in term:
        arms.append(Order.objects.filter(customer_email__iexact=term))
    elif len(term) >= 3:
        arms += [Order.objects.filter(customer_name__icontains=term), Order.objects.filter(customer_email__icontains=term)]
    ids = [arm.order_by().values_list("pk", flat=True) for arm in arms]
    ids.append(OrderLine.objects.filter(sku_code__iexact=term).order_by().values_list("order_id", flat=True))
    ids.append(Shipment.objects.filter(tracking_number__iexact=term).order_by().values_list("order_id", flat=True))
    first, *rest = ids
    return list(first.union(*rest)[:limit])


def exception_of_order_shipping_from(site: Location) -> Q:
    """An exception whose order has a shipment from `site`, as one id list rather than a join that repeats rows."""
    return Q(order_id__in=Shipment.objects.filter(location=site).values("order_id"))


def search_q(term: str) -> Q:
    """The orders `term` finds (see order_ids_matching), as a condition; an empty term matches every order."""
    return Q(pk__in=order_ids_matching(term)) if term.strip() else Q()


def _split_partner(term: str) -> tuple[str, str, str]:
    """("NW", "/", "NW-11032") from "NW/NW-11032"; the order page names an order "NW NW-11032", so a space works too."""
    for separator in ("/", " "):
        code, found, rest = term.partition(separator)
        if found and code.strip() and rest.strip():
            return code.strip(), found, rest.strip()
    return "", "", ""


def search_resolve(term: str) -> FulfillmentException | Order | None:
    """The one thing `term` names, if it names exactly one: an exception by its number, else the single
    matching order; None when nothing or several match.

    "#123" and "E123" always mean exception 123. A bare number means an exception only when no order
    carries it as its own number, since some channels number their orders with plain digits.
    """
    term = term.strip()
    if not term:
        return None
    numbered = EXCEPTION_NUMBER.match(term)
    if numbered:
        return FulfillmentException.objects.filter(pk=int(numbered.group(1))).first()
    if BARE_NUMBER.match(term) and not Order.objects.filter(external_id__iexact=term).exists():
        exception = FulfillmentException.objects.filter(pk=int(term)).first()
        if exception is not None:
            return exception
    matches = list(Order.objects.filter(search_q(term)).order_by().values_list("pk", flat=True)[:2])
    if len(matches) == 1:
        return Order.objects.get(pk=matches[0])
    return None


# --- sorting -------------------------------------------------------------------------------------------

# The lifecycle's order, so "status" sorts received before shipped rather than alphabetically.
STATUS_RANK = Case(
    *(When(status=value, then=Value(rank)) for rank, value in enumerate(OrderStatus.values)),
    default=Value(len(OrderStatus.values)),
    output_field=IntegerField(),
)


SORTS = Sorts(
    {
        "placed": Sort("Placed", (("placed_at", False), ("id", False))),  # newest first
        "value": Sort("Value", (("total_amount", False), ("placed_at", False), ("id", False))),  # largest first
        "status": Sort("Status", ((STATUS_RANK, True), ("placed_at", False), ("id", False))),
        "partner": Sort("Partner / order", (("partner__code", True), ("external_id", True), ("id", True))),
    },
    default="placed",
)


# --- filters -------------------------------------------------------------------------------------------


class YesNo:
    YES, NO = "yes", "no"
    choices = ((YES, "Yes"), (NO, "No"))


def _open_exceptions_of_order():
    return FulfillmentException.objects.filter(order=OuterRef("pk"), status__in=OPEN_STATUSES)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class PlacedDateFilter(django_filters.DateFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}))
        kwargs.setdefault("error_messages", {"invalid": "Enter a date as YYYY-MM-DD."})
        super().__init__(*args, **kwargs)


class OrderFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Search", method="filter_search")
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices, empty_label="Any status")
    partner = django_filters.ModelChoiceFilter(
        queryset=Partner.objects.order_by("code"), to_field_name="code", empty_label="Any partner"
    )
    location = django_filters.ModelChoiceFilter(
        label="Ships from",
        queryset=Location.objects.filter(active=True).order_by("code"),
        to_field_name="code",
        empty_label="Any location",
        method="filter_location",
    )
    placed_from = PlacedDateFilter(label="Placed from", method="filter_placed_from")
    placed_to = PlacedDateFilter(label="Placed to", method="filter_placed_to")
    open_exceptions = django_filters.ChoiceFilter(
        label="Open exceptions", choices=YesNo.choices, empty_label="Any", method="filter_open_exceptions"
    )
    # The orders a dashboard figure counts.
    outcome = django_filters.ChoiceFilter(
        label="Outcome",
        choices=[(key, label) for key, (label, _) in measures.OUTCOMES.items()] + [("released", "Reached ship-ready")],
        empty_label="Any",
        method="filter_outcome",
    )

    class Meta:
        model = Order
        fields = ["q", "status", "partner", "location", "placed_from", "placed_to", "open_exceptions", "outcome"]

    @property
    def searched(self) -> str:
        """The search term the list applied ("" when none); a bad date elsewhere in the form does not drop it."""
        if not self.is_bound:
            return ""
        self.form.is_valid()
        return (self.form.cleaned_data.get("q") or "").strip()

    def filter_search(self, queryset, name, value):
        return queryset.filter(search_q(value)) if value.strip() else queryset

    def filter_location(self, queryset, name, value):
        return queryset.filter(Exists(Shipment.objects.filter(order=OuterRef("pk"), location=value))) if value else queryset

    def filter_placed_from(self, queryset, name, value):
        return queryset.filter(placed_at__gte=_day_start(value)) if value else queryset

    def filter_placed_to(self, queryset, name, value):
        # Through the whole of that day.
        return queryset.filter(placed_at__lt=_day_start(value + timedelta(days=1))) if value else queryset

    def filter_outcome(self, queryset, name, value):
        if value == "released":
            return queryset.filter(measures.released())
        return measures.with_outcome_facts(queryset).filter(measures.outcome_condition(value))

    def filter_open_exceptions(self, queryset, name, value):
        if value == YesNo.YES:
            return queryset.filter(Exists(_open_exceptions_of_order()))
        if value == YesNo.NO:
            return queryset.exclude(Exists(_open_exceptions_of_order()))
        return queryset


def open_exception_count() -> Coalesce:
    """The number of the row's open exceptions, as one correlated subquery in the list's query."""
    counted = _open_exceptions_of_order().order_by().values("order").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def order_list(params) -> OrderFilter:
    """The orders `params` filter, search and sort for, with their partner and their open exceptions'
    count; `.qs` holds the rows. Invalid filters are left out and named in `.form.errors`.

    Counting the list (the paginator's COUNT) drops the ordering, the join to the partner and the
    count annotation, so it reads only the order table and whichever index its filters allow.
    """
    queryset: QuerySet[Order] = (
        Order.objects.select_related("partner").annotate(open_exceptions=open_exception_count()).order_by(*SORTS.order_by(params))
    )
    return OrderFilter(params, queryset=queryset)
