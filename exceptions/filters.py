from collections.abc import Callable

import django_filters
from django import forms
from django.db.models import Expression, Q

from core.priority import Priority
from inventory.models import Location

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


def search_condition(term: str) -> Q:
    """What a coordinator types to find an exception: its number, the order's number or customer, or a SKU."""
    term = term.strip()
    number = term.lstrip("#").removeprefix("E").removeprefix("e")
    condition = (
        Q(order__external_id__iexact=term)
        | Q(order__customer_email__iexact=term)
        | Q(sku__code__iexact=term)
        | Q(line__sku_code__iexact=term)
    )
    if "@" not in term and len(term) >= 3:
        condition |= Q(order__customer_name__icontains=term)
    if number.isdigit() and len(number) < 10:
        condition |= Q(pk=int(number))
    return condition


class ExceptionFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Search", method="filter_search")
    type = ExceptionTypeFilter(queryset=ExceptionType.objects.order_by("name"), empty_label="Any type")
    stage = django_filters.ChoiceFilter(field_name="type__stage", label="Stage", choices=Stage.choices, empty_label="Any stage")
    queue = django_filters.ModelChoiceFilter(queryset=Queue.objects.order_by("name"), empty_label="Any queue")
    priority = django_filters.ChoiceFilter(choices=Priority.choices, empty_label="Any priority")
    location = django_filters.ModelChoiceFilter(
        queryset=Location.objects.filter(active=True).order_by("code"), empty_label="Any location", method="filter_location"
    )

    class Meta:
        model = FulfillmentException
        fields = ["q", "type", "stage", "queue", "priority", "location"]

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
