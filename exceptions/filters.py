from collections.abc import Callable

import django_filters
from django import forms
from django.db.models import Expression, Q

from core.priority import Priority
from inventory.models import Location, Sku

from .models import ExceptionType, FulfillmentException, Queue, Stage

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

    class Meta:
        model = FulfillmentException
        fields = ["q", "type", "stage", "queue", "priority", "location", "source"]

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        return queryset.annotate(**{name: expression() for name, expression in _row_annotations.items()})

    @property
    def narrowed(self) -> bool:
        """Whether any filter or search is set: if not, the list is its tab and the tab's count is its count."""
        return (
            self.is_bound and self.form.is_valid() and any(value not in (None, "") for value in self.form.cleaned_data.values())
        )

    def filter_search(self, queryset, name, value):
        return queryset.filter(search_condition(value)) if value.strip() else queryset

    def filter_location(self, queryset, name, value):
        # The site the problem is at, or the site the shipment in question leaves from. Both are foreign keys
        # going one way, so neither join repeats a row.
        return queryset.filter(Q(location=value) | Q(shipment__location=value)) if value else queryset
