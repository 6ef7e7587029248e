"""The partner API's order shapes (DESIGN §5). Input is strict: unknown fields, JSON of another type and control
characters are errors, never coerced or stored."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.api import caller_partner
from exceptions.models import OPEN_STATUSES

from .addresses import ADDRESS_FIELDS
from .models import (
    AFTER_RELEASE,
    CANCELLABLE,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    CustomerTier,
    Order,
    OrderStatus,
    ServiceLevel,
    ShipmentStatus,
)

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


class PlainIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: DRF would also take "1" and 1.0 (and so "1_0", read by Python as 10)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# None of the API's text fields is multi-line (names, address lines, codes, carriers, reasons): a tab or a
# line break is as wrong in one as any other C0 or C1 control character or DEL, and breaks the labels and
# CSV exports the text ends up in.
_CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
CONTROL_CHARACTER = re.compile(f"[{_CONTROL_CHARACTERS}]")
CONTROL_CHARACTERS_MESSAGE = "Control characters (tab and line breaks among them) are not allowed."
# Never fails once the field's own check has run; it puts the rule in the OpenAPI schema as a pattern.
WITHOUT_CONTROL_CHARACTERS = RegexValidator(
    rf"\A[^{_CONTROL_CHARACTERS}]*\Z", message=CONTROL_CHARACTERS_MESSAGE, code="control_characters"
)


class _JsonText:
    """A JSON string and nothing else (DRF's own text fields turn 1001 into "1001" and 0 into "0"), free of
    control characters. Both are checked on the value as sent, before DRF trims it: a trailing newline is
    refused rather than silently cut off, and so is a tab where a blank is allowed."""

    default_error_messages = {
        "not_a_string": "Not a valid string; send JSON text.",
        "control_characters": CONTROL_CHARACTERS_MESSAGE,
    }

    def run_validation(self, data=serializers.empty):
        if data is not serializers.empty and data is not None:
            if not isinstance(data, str):
                self.fail("not_a_string")
            if CONTROL_CHARACTER.search(data):
                self.fail("control_characters")
        return super().run_validation(data)


class _JsonTextWithSchemaPattern(_JsonText):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Last, so that a field's own pattern (a RegexField's) is the one the schema shows.
        self.validators.append(WITHOUT_CONTROL_CHARACTERS)


class StrictCharField(_JsonTextWithSchemaPattern, serializers.CharField):
    pass


class StrictEmailField(_JsonTextWithSchemaPattern, serializers.EmailField):
    pass


class StrictRegexField(_JsonTextWithSchemaPattern, serializers.RegexField):
    pass


class StrictChoiceField(_JsonText, serializers.ChoiceField):
    """Its choices are the schema's enum; DRF alone would match 1 against a choice "1"."""


class PlainDecimalField(_JsonText, _NoDigitGrouping, serializers.DecimalField):
    """A decimal string such as "12.50", as the API answers amounts: a JSON number is refused, since the
    binary float it becomes on the way in need not be the amount the partner meant."""

    default_error_messages = {"not_a_string": 'Send the amount as a decimal string, such as "12.50", not a JSON number.'}


# PostgreSQL reads a time-zone offset of at most 15:59 either way (Python's reach 23:59) and no fractions of a
# second; ISO 8601 offsets are hours and minutes, and every real one lies between -12:00 and +14:00.
LARGEST_UTC_OFFSET = timedelta(hours=15, minutes=59)
UTC_OFFSET_MESSAGE = "The time-zone offset must be whole minutes between -15:59 and +15:59, or Z."
MOMENT_HELP = "ISO 8601, with a time-zone offset of whole minutes between -15:59 and +15:59, or Z."


def utc_offset_storable(moment: datetime) -> bool:
    offset = moment.utcoffset()
    return offset is None or (abs(offset) <= LARGEST_UTC_OFFSET and offset % timedelta(minutes=1) == timedelta(0))


def validate_utc_offset(moment: datetime | None) -> None:
    """For Django form fields, such as a filter's."""
    if moment is not None and not utc_offset_storable(moment):
        raise DjangoValidationError(UTC_OFFSET_MESSAGE, code="utc_offset")


class StorableDateTimeField(_JsonText, serializers.DateTimeField):
    """An ISO 8601 moment whose offset PostgreSQL can read."""

    default_error_messages = {"utc_offset": UTC_OFFSET_MESSAGE}

    def enforce_timezone(self, value):
        # Checked here, as parsed: DRF then converts the moment to UTC, and its validators never see the offset.
        if not utc_offset_storable(value):
            self.fail("utc_offset")
        return super().enforce_timezone(value)


def _address_input(name: str) -> StrictCharField:
    # Missing or odd parts are a business problem (the order is held), not a malformed request.
    return StrictCharField(
        max_length=Order._meta.get_field(f"ship_{name}").max_length,
        required=False,
        allow_blank=True,
        default="",
        help_text=ADDRESS_HELP.get(name, ""),
    )


ADDRESS_HELP = {"country": "ISO 3166-1 alpha-2."}
AddressSerializer = type("AddressSerializer", (StrictSerializer,), {name: _address_input(name) for name in ADDRESS_FIELDS})


class CustomerSerializer(StrictSerializer):
    name = StrictCharField(max_length=200)
    email = StrictEmailField(max_length=254, required=False, allow_blank=True, default="")
    tier = StrictChoiceField(choices=CustomerTier.choices, default=CustomerTier.STANDARD)


class LineInputSerializer(StrictSerializer):
    sku = StrictCharField(max_length=64)
    quantity = PlainIntegerField(min_value=1, max_value=1_000_000)
    uom = StrictCharField(max_length=16, default="each")
    unit_price = PlainDecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text='Per unit of `uom`, as a decimal string such as "12.50" (as answers give it); a JSON number is refused.',
    )


@extend_schema_serializer(examples=[OpenApiExample("An order", value=ORDER_EXAMPLE, request_only=True)])
class OrderInputSerializer(StrictSerializer):
    external_id = StrictCharField(max_length=100)
    placed_at = StorableDateTimeField(help_text=MOMENT_HELP)
    currency = StrictRegexField(
        r"^[A-Za-z]{3}$", max_length=3, error_messages={"invalid": "Use a three-letter ISO currency code."}
    )
    service_level = StrictChoiceField(choices=ServiceLevel.choices, default=ServiceLevel.STANDARD)
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


# --- batch intake (documentation of POST /api/v1/orders/batch/; the view reads each order on its own) -------------


class BatchItemSerializer(StrictSerializer):
    idempotency_key = StrictCharField(
        required=False,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        help_text="As the Idempotency-Key header of the single intake: one per order attempt, kept 24 hours.",
    )
    order = OrderInputSerializer(help_text="Exactly the body of POST /api/v1/orders/.")


class BatchRequestSerializer(StrictSerializer):
    orders = BatchItemSerializer(many=True, help_text="1 to 100 orders.")


class BatchResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The order's place in the request, from 0.")
    status = serializers.IntegerField(help_text="201 created, 400 invalid, 409 duplicate or key in flight, 422 key reused.")
    order = OrderSerializer(required=False, help_text="With 201: the order, as the single intake answers it.")
    error = DuplicateOrderErrorSerializer(required=False, help_text="Otherwise: why, in the one error shape.")
    replayed = serializers.BooleanField(required=False, help_text="True when the answer is one its key got before.")


class BatchResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Orders this request created.")
    failed = serializers.IntegerField(help_text="Orders not created (any status but 201).")
    results = BatchResultSerializer(many=True)


_EXAMPLE_ORDER = {
    "external_id": "EDI-20261202-0001",
    "placed_at": "2026-12-02T08:15:00Z",
    "currency": "USD",
    "service_level": "standard",
    "customer": {"name": "Grace Hopper", "email": "grace@example.com", "tier": "standard"},
    "shipping_address": {
        "name": "Grace Hopper",
        "line1": "1 Navy Way",
        "city": "Arlington",
        "region": "VA",
        "postal_code": "22202",
        "country": "US",
    },
    "lines": [{"sku": "SKU-1", "quantity": 2, "uom": "each", "unit_price": "12.50"}],
}
BATCH_REQUEST_EXAMPLE = {
    "orders": [
        {"idempotency_key": "edi-20261202-0001", "order": _EXAMPLE_ORDER},
        {"order": {**_EXAMPLE_ORDER, "external_id": "EDI-20261202-0002"}},
    ]
}
BATCH_RESPONSE_EXAMPLE = {
    "created": 1,
    "failed": 2,
    "results": [
        {"index": 0, "status": 201, "order": {"id": 4711, "external_id": "EDI-20261202-0001", "status": "allocated"}},
        {
            "index": 1,
            "status": 409,
            "error": {"code": "duplicate_order", "message": "You already sent order EDI-20261202-0002; it is order 4702."},
        },
        {
            "index": 2,
            "status": 400,
            "error": {
                "code": "validation_error",
                "message": "The request is not valid; see fields.",
                "fields": {"lines": {"0": {"quantity": ["Ensure this value is greater than or equal to 1."]}}},
            },
        },
    ],
}
