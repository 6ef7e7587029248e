from collections.abc import Callable
from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Expression, F, Q
from django.utils import timezone

from core.priority import Priority
from inventory.models import Location, Sku

from .models import OPEN_STATUSES, ExceptionStatus, ExceptionType, FulfillmentException, Queue, Stage

# Apps to the right register what their actions' `applies` read from a row (they cannot be imported here), so a
# page of rows is one query rather than one per row.
_row_annotations: dict[str, Callable[[], Expression]] = {}


def annotate_rows(name: str, expression: Callable[[], Expression]) -> None:
    _row_annotations[name] = expression


class ExceptionTypeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ExceptionType) -> str:
        return obj.name


class ExceptionTypeFilter(django_filters.ModelChoiceFilter):
    field_class = ExceptionTypeChoiceField


# The orders app tells what a term means for orders (their numbers, customers, SKUs, tracking); it cannot be
# imported from here.
_order_search: list[Callable[[str], list[int]]] = []


def search_orders_with(find: Callable[[str], list[int]]) -> None:
    _order_search[:] = [find]


def search_condition(term: str) -> Q:
    """What a coordinator types to find an exception: its number, anything that finds its order, or a SKU.

    Each part is resolved to ids first (one query each, all indexed), so the list's condition is an OR of id
    lists the planner answers from indexes rather than a scan of every open exception."""
    term = term.strip()
    number = term.lstrip("#").removeprefix("E").removeprefix("e")
    condition = Q(pk=int(number)) if number.isdigit() and len(number) < 10 else Q(pk__in=[])
    order_ids = [id_ for find in _order_search for id_ in find(term)]
    if order_ids:
        condition |= Q(order_id__in=order_ids)
    sku_ids = list(Sku.objects.filter(code__iexact=term).values_list("pk", flat=True)[:10])
    if sku_ids:
        condition |= Q(sku_id__in=sku_ids)
    return condition


# --- what a figure of the dashboard counts, said once for the figure and for the queue behind it --------------

# Age since detection: (key, label, at least, under).
AGE_BANDS = (
    ("under_4h", "Under 4 h", None, timedelta(hours=4)),
    ("4h_24h", "4–24 h", timedelta(hours=4), timedelta(hours=24)),
    ("1d_3d", "1–3 days", timedelta(hours=24), timedelta(days=3)),
    ("over_3d", "Over 3 days", timedelta(days=3), None),
)


def age_band_condition(band: str, now: datetime) -> Q:
    for key, _label, at_least, under in AGE_BANDS:
        if key == band:
            condition = Q()
            if at_least is not None:
                condition &= Q(detected_at__lte=now - at_least)
            if under is not None:
                condition &= Q(detected_at__gt=now - under)
            return condition
    raise ValueError(f"no age band {band!r}")


def sla_warned_condition() -> Q:
    return Q(warned_at__isnull=False)


def sla_breached_condition(now: datetime) -> Q:
    """Escalated, resolved after its due time, or open past it."""
    return (
        Q(escalated=True)
        | Q(resolved_at__isnull=False, resolved_at__gt=F("due_at"))
        | Q(status__in=OPEN_STATUSES, due_at__lte=now)
    )


# The orders app adds "or its order ships from the site" (orders cannot be imported from here).
_site_conditions: list[Callable[[Location], Q]] = []


def site_condition_with(condition: Callable[[Location], Q]) -> None:
    _site_conditions[:] = [condition]


def at_site_condition(site: Location) -> Q:
    """An exception belongs to a site when it is at it, its shipment leaves from it, or its order ships from it.
    Each part is a foreign key or an id list, so no join repeats a row."""
    condition = Q(location=site) | Q(shipment__location=site)
    for more in _site_conditions:
        condition |= more(site)
    return condition


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class State:
    OPEN = ""
    ALL = "all"
    CLOSED = "closed"
    CHOICES = (("all", "Open and closed"), ("closed", "Closed"))


class ExceptionFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Search", method="filter_search")
    type = ExceptionTypeFilter(queryset=ExceptionType.objects.order_by("name"), empty_label="Any type")
    stage = django_filters.ChoiceFilter(field_name="type__stage", label="Stage", choices=Stage.choices, empty_label="Any stage")
    queue = django_filters.ModelChoiceFilter(queryset=Queue.objects.order_by("name"), empty_label="Any queue")
    priority = django_filters.ChoiceFilter(choices=Priority.choices, empty_label="Any priority")
    # The system that raised it (wms, erp, api, carrier, portal...), as the dashboard links to it.
    source = django_filters.CharFilter(
        field_name="source_system", label="Source", widget=forms.TextInput(attrs={"size": 8, "placeholder": "Any"})
    )
    location = django_filters.ModelChoiceFilter(
        queryset=Location.objects.filter(active=True).order_by("code"), empty_label="Any location", method="filter_location"
    )
    # Open only unless asked: a dashboard figure over a period counts closed exceptions too.
    state = django_filters.ChoiceFilter(label="Showing", choices=State.CHOICES, empty_label="Open", method="filter_state")
    status = django_filters.ChoiceFilter(choices=ExceptionStatus.choices, empty_label="Any status")
    # The filters a dashboard figure links with; the queue shows them under "More filters".
    created_from = django_filters.DateFilter(
        label="Created from", method="filter_created_from", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = django_filters.DateFilter(
        label="Created to", method="filter_created_to", widget=forms.DateInput(attrs={"type": "date"})
    )
    age = django_filters.ChoiceFilter(
        label="Age", choices=[(key, label) for key, label, *_ in AGE_BANDS], empty_label="Any age", method="filter_age"
    )
    sla = django_filters.ChoiceFilter(
        label="SLA", choices=(("warned", "Warned"), ("breached", "Breached")), empty_label="Any", method="filter_sla"
    )
    responded = django_filters.ChoiceFilter(
        label="Responded", choices=(("yes", "Yes"), ("no", "No")), empty_label="Any", method="filter_responded"
    )

    sku = django_filters.CharFilter(
        field_name="sku__code", lookup_expr="iexact", label="SKU", widget=forms.TextInput(attrs={"size": 10})
    )
    partner = django_filters.CharFilter(
        field_name="order__partner__code", lookup_expr="iexact", label="Partner", widget=forms.TextInput(attrs={"size": 12})
    )

    MORE = ("status", "created_from", "created_to", "age", "sla", "responded", "sku", "partner")

    class Meta:
        model = FulfillmentException
        fields = ["q", "type", "stage", "queue", "priority", "location", "source", "state"]

    def filter_queryset(self, queryset):
        # A value that fails to validate is missing here, so a bad one shows open exceptions, never closed ones.
        if not self.form.cleaned_data.get("state") and not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status__in=OPEN_STATUSES)
        queryset = super().filter_queryset(queryset)
        return queryset.annotate(**{name: expression() for name, expression in _row_annotations.items()})

    @property
    def main_fields(self):
        return [field for field in self.form if field.name not in self.MORE]

    @property
    def more_fields(self):
        return [field for field in self.form if field.name in self.MORE]

    @property
    def more_set(self) -> bool:
        return any(self.data.get(name) for name in self.MORE)

    @property
    def narrowed(self) -> bool:
        """Whether any filter or search is set: if not, the list is its tab and the tab's count is its count."""
        return (
            self.is_bound and self.form.is_valid() and any(value not in (None, "") for value in self.form.cleaned_data.values())
        )

    def filter_search(self, queryset, name, value):
        return queryset.filter(search_condition(value)) if value.strip() else queryset

    def filter_location(self, queryset, name, value):
        return queryset.filter(at_site_condition(value))

    def filter_state(self, queryset, name, value):
        return queryset.exclude(status__in=OPEN_STATUSES) if value == State.CLOSED else queryset

    def filter_created_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=day_start(value))

    def filter_created_to(self, queryset, name, value):
        return queryset.filter(created_at__lt=day_start(value + timedelta(days=1)))

    def filter_age(self, queryset, name, value):
        return queryset.filter(age_band_condition(value, timezone.now()))

    def filter_sla(self, queryset, name, value):
        condition = sla_warned_condition() if value == "warned" else sla_breached_condition(timezone.now())
        return queryset.filter(condition)

    def filter_responded(self, queryset, name, value):
        return queryset.filter(first_response_at__isnull=value != "yes")
