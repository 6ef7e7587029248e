"""The partner API's order shapes (DESIGN §5). Input is strict: unknown fields are errors."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.api import caller_partner
from exceptions.models import OPEN_STATUSES

from .addresses import ADDRESS_FIELDS
from .models import AFTER_RELEASE, CANCELLABLE, CustomerTier, Order, OrderStatus, ServiceLevel, ShipmentStatus

ORDER_EXAMPLE = {
    "external_id": "1001",
    "placed_at": "2026-11-20T10:00:00Z",
    "currency": "USD",
    "service_level": "standard",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "tier": "standard"},
    "shipping_address": {
        "name": "Ada Lovelace",
        "line1": "1 Main St",
        "line2": "",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    },
    "lines": [{"sku": "SKU-1", "quantity": 2, "uom": "each", "unit_price": "12.50"}],
}
ORDER_ANSWER_EXAMPLE = {
    "id": 17,
    "external_id": "1001",
    "status": "allocated",
    "priority": "P3",
    "service_level": "standard",
    "customer": ORDER_EXAMPLE["customer"],
    "shipping_address": ORDER_EXAMPLE["shipping_address"],
    "currency": "USD",
    "lines": [
        {
            "id": 31,
            "sku": "SKU-1",
            "quantity": 2,
            "uom": "each",
            "unit_price": "12.50",
            "quantity_allocated": 2,
            "quantity_shipped": 0,
            "quantity_cancelled": 0,
        }
    ],
    "shipments": [
        {
            "id": 9,
            "location": "WH-EAST",
            "status": "planned",
            "carrier": "",
            "tracking_number": "",
            "lines": [{"line": 31, "quantity": 2}],
        }
    ],
    "open_exceptions": [],
    "allowed_actions": ["cancel", "change_address"],
    "created_at": "2026-11-20T10:00:01Z",
    "updated_at": "2026-11-20T10:00:01Z",
}


ORDER_TOTAL_LIMIT = 10**12


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error rather than silently ignored data."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class _NoDigitGrouping:
    """Python reads "1_000" as 1000; in a partner's number that is a typo, not a digit separator."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "_" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class PlainIntegerField(_NoDigitGrouping, serializers.IntegerField):
    pass


class PlainDecimalField(_NoDigitGrouping, serializers.DecimalField):
    pass


def _address_input(name: str) -> serializers.CharField:
    # Missing or odd parts are a business problem (the order is held), not a malformed request.
    return serializers.CharField(
        max_length=Order._meta.get_field(f"ship_{name}").max_length,
        required=False,
        allow_blank=True,
        default="",
        help_text=ADDRESS_HELP.get(name, ""),
    )


ADDRESS_HELP = {"country": "ISO 3166-1 alpha-2."}
AddressSerializer = type("AddressSerializer", (StrictSerializer,), {name: _address_input(name) for name in ADDRESS_FIELDS})


class CustomerSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    tier = serializers.ChoiceField(choices=CustomerTier.choices, default=CustomerTier.STANDARD)


class LineInputSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64)
    quantity = PlainIntegerField(min_value=1, max_value=1_000_000)
    uom = serializers.CharField(max_length=16, default="each")
    unit_price = PlainDecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))


@extend_schema_serializer(examples=[OpenApiExample("An order", value=ORDER_EXAMPLE, request_only=True)])
class OrderInputSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=100)
    placed_at = serializers.DateTimeField()
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$", max_length=3, error_messages={"invalid": "Use a three-letter ISO currency code."}
    )
    service_level = serializers.ChoiceField(choices=ServiceLevel.choices, default=ServiceLevel.STANDARD)
    customer = CustomerSerializer()
    shipping_address = AddressSerializer()
    lines = serializers.ListField(
        child=LineInputSerializer(),
        min_length=1,
        max_length=settings.API_MAX_ORDER_LINES,
        error_messages={
            "max_length": f"At most {settings.API_MAX_ORDER_LINES} lines per order.",
            "min_length": "At least one line.",
        },
    )

    def validate_lines(self, lines):
        # The order's total is stored with 14 digits (12 before the point):
        # say so about the lines, not about a field the partner never sent.
        total = sum(line["quantity"] * line["unit_price"] for line in lines)
        if total >= ORDER_TOTAL_LIMIT:
            raise serializers.ValidationError(f"The order's total ({total:,.2f}) must stay below {ORDER_TOTAL_LIMIT:,}.")
        return lines


class AddressChangeSerializer(AddressSerializer):
    pass


class LineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField(source="sku_code")
    quantity = serializers.IntegerField()
    uom = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    quantity_allocated = serializers.IntegerField()
    quantity_shipped = serializers.IntegerField()
    quantity_cancelled = serializers.IntegerField()


class ShipmentLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(source="order_line_id")
    quantity = serializers.IntegerField()


class ShipmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    location = serializers.CharField(source="location.code")
    status = serializers.CharField()
    carrier = serializers.CharField()
    tracking_number = serializers.CharField()
    lines = ShipmentLineSerializer(many=True, source="loaded_lines")


class OpenExceptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(source="type.code")
    status = serializers.CharField()
    priority = serializers.CharField()
    due_at = serializers.DateTimeField()


class CustomerOutSerializer(serializers.Serializer):
    name = serializers.CharField(source="customer_name")
    email = serializers.CharField(source="customer_email")
    tier = serializers.CharField(source="customer_tier")


AddressOutSerializer = type(
    "AddressOutSerializer",
    (serializers.Serializer,),
    {name: serializers.CharField(source=f"ship_{name}") for name in ADDRESS_FIELDS},
)


ADDRESS_CHANGEABLE = (*CANCELLABLE, *AFTER_RELEASE)


# What staff on their session need for each action (partners may take every one on their own orders).
ACTION_PERMISSIONS = {"cancel": "orders.cancel_order", "change_address": "orders.correct_address"}


def allowed_actions(order: Order, staff=None) -> list[str]:
    """What the caller may ask for this order now: a partner, or `staff` (a user) within their role's permissions.
    Reads the prefetched shipments, no query (the staff user's permissions once)."""
    picked = any(s.status in (ShipmentStatus.PICKED, ShipmentStatus.PACKED) for s in order.loaded_shipments)
    actions = []
    if order.status in CANCELLABLE and not picked:
        actions.append("cancel")
    if order.status in ADDRESS_CHANGEABLE and order.status != OrderStatus.CANCELLED:
        actions.append("change_address")
    if staff is not None:
        actions = [action for action in actions if staff.has_perm(ACTION_PERMISSIONS[action])]
    return actions


@extend_schema_serializer(examples=[OpenApiExample("An allocated order", value=ORDER_ANSWER_EXAMPLE, response_only=True)])
class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    priority = serializers.CharField()
    service_level = serializers.CharField()
    customer = CustomerOutSerializer(source="*")
    shipping_address = AddressOutSerializer(source="*")
    currency = serializers.CharField()
    lines = LineSerializer(many=True, source="loaded_lines")
    shipments = ShipmentSerializer(many=True, source="loaded_shipments")
    open_exceptions = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField(
        help_text="What you may ask for this order now: cancel, change_address (staff: within their role)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_open_exceptions(self, order) -> list[dict]:
        return OpenExceptionSerializer([e for e in order.loaded_exceptions if e.status in OPEN_STATUSES], many=True).data

    def get_allowed_actions(self, order) -> list[str]:
        request = self.context.get("request")
        staff = request.user if request is not None and caller_partner(request.user) is None else None
        return allowed_actions(order, staff)


class DuplicateOrderErrorSerializer(serializers.Serializer):
    """For the schema: the error shape of DESIGN §5."""

    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(help_text="Field errors by field; empty unless the request was not valid.")
    order_id = serializers.IntegerField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = DuplicateOrderErrorSerializer()
