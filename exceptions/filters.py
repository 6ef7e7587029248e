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


class ExceptionFilter(django_filters.FilterSet):
    type = ExceptionTypeFilter(queryset=ExceptionType.objects.order_by("name"), empty_label="Any type")
    stage = django_filters.ChoiceFilter(field_name="type__stage", label="Stage", choices=Stage.choices, empty_label="Any stage")
    queue = django_filters.ModelChoiceFilter(queryset=Queue.objects.order_by("name"), empty_label="Any queue")
    priority = django_filters.ChoiceFilter(choices=Priority.choices, empty_label="Any priority")
    location = django_filters.ModelChoiceFilter(
        queryset=Location.objects.filter(active=True).order_by("code"), empty_label="Any location", method="filter_location"
    )

    class Meta:
        model = FulfillmentException
        fields = ["type", "stage", "queue", "priority", "location"]

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        return queryset.annotate(**{name: expression() for name, expression in _row_annotations.items()})

    def filter_location(self, queryset, name, value):
        # The site the problem is at, or the site an order's shipment leaves from.
        return queryset.filter(Q(location=value) | Q(shipment__location=value)).distinct() if value else queryset
