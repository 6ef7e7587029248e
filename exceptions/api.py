"""Exceptions, read-only over the API: staff see all, a partner those of its own orders."""

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets

from core.api import caller_partner, is_staff_caller
from core.priority import Priority

from .models import ExceptionStatus, FulfillmentException


class ExceptionOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(source="type.code")
    name = serializers.CharField(source="type.name")
    stage = serializers.CharField(source="type.stage")
    status = serializers.CharField()
    priority = serializers.CharField()
    summary = serializers.CharField()
    order = serializers.IntegerField(source="order_id", allow_null=True)
    order_external_id = serializers.SerializerMethodField()
    queue = serializers.CharField(source="queue.name")
    due_at = serializers.DateTimeField()
    escalated = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution_note = serializers.CharField()

    def get_order_external_id(self, exception) -> str | None:
        return exception.order.external_id if exception.order_id else None


class _IdField(forms.IntegerField):
    def to_python(self, value):
        if (
            isinstance(value, str) and value.strip() and not value.strip().isdigit()
        ):  # not 4.7, 4e0 or 1_0, which int() would bend into an id
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class IdFilter(django_filters.Filter):
    """An order id, exactly: django-filter's NumberFilter reads decimals, and would take 4.7 for order 4."""

    field_class = _IdField


class ExceptionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExceptionStatus.choices)
    code = django_filters.CharFilter(field_name="type__code")
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    order = IdFilter(field_name="order_id")

    class Meta:
        model = FulfillmentException
        fields = ["status", "code", "priority", "order"]


@extend_schema(summary="Exceptions: staff see all, a partner those of its own orders (read-only)")
class ExceptionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ExceptionOutSerializer
    filterset_class = ExceptionFilter

    def get_queryset(self):
        queryset = FulfillmentException.objects.select_related("type", "queue", "order").order_by("-created_at", "-id")
        partner = caller_partner(self.request.user)
        if partner is not None:
            return queryset.filter(order__partner=partner)
        return queryset if is_staff_caller(self.request.user) else queryset.none()
