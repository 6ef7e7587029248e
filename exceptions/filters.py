import django_filters
from django.db.models import Q

from core.priority import Priority
from inventory.models import Location

from .models import ExceptionType, FulfillmentException, Queue, Stage


class ExceptionFilter(django_filters.FilterSet):
    type = django_filters.ModelChoiceFilter(queryset=ExceptionType.objects.order_by("name"), empty_label="Any type")
    stage = django_filters.ChoiceFilter(field_name="type__stage", label="Stage", choices=Stage.choices, empty_label="Any stage")
    queue = django_filters.ModelChoiceFilter(queryset=Queue.objects.order_by("name"), empty_label="Any queue")
    priority = django_filters.ChoiceFilter(choices=Priority.choices, empty_label="Any priority")
    location = django_filters.ModelChoiceFilter(
        queryset=Location.objects.filter(active=True).order_by("code"), empty_label="Any location", method="filter_location"
    )

    class Meta:
        model = FulfillmentException
        fields = ["type", "stage", "queue", "priority", "location"]

    def filter_location(self, queryset, name, value):
        # The site the problem is at, or the site an order's shipment leaves from.
        return queryset.filter(Q(location=value) | Q(shipment__location=value)).distinct() if value else queryset
