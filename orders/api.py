"""Partner REST API v1 for orders, availability and warehouse events (DESIGN §5). Thin: services decide."""

from __future__ import annotations

import json

import django_filters
from django.conf import settings
from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api import (
    PartnerRateThrottle,
    PayloadTooLarge,
    caller_partner,
    error_body,
    error_response,
    is_staff_caller,
    validation_error_body,
)
from core.db import atomic_retrying_deadlocks
from core.errors import DomainError
from exceptions.models import FulfillmentException
from inventory.selectors import availability

from .errors import OrderError
from .models import IDEMPOTENCY_KEY_MAX_LENGTH, LOADED, Order, OrderStatus, Shipment, ShipmentLine, loaded
from .selectors import orders_changed_after
from .serializers import (
    ACTION_PERMISSIONS,
    BATCH_REQUEST_EXAMPLE,
    BATCH_RESPONSE_EXAMPLE,
    MOMENT_HELP,
    AddressChangeSerializer,
    BatchRequestSerializer,
    BatchResponseSerializer,
    ErrorSerializer,
    OrderInputSerializer,
    OrderSerializer,
    PlainIntegerField,
    ShipmentSerializer,
    StrictCharField,
    StrictChoiceField,
    StrictSerializer,
    validate_utc_offset,
)
from .services import addresses as address_services
from .services import batch, idempotency, intake, lifecycle, shipments

ERRORS = {
    code: OpenApiResponse(ErrorSerializer, description=text)
    for code, text in {
        400: "Malformed JSON, wrong types, unknown fields, non-positive quantities, too many lines",
        401: "Missing or wrong token",
        403: "Staff signed in whose role may not do this",
        404: "Not found (or another partner's)",
        409: "Not possible in the order's state, a duplicate, or the same key still in flight",
        413: "Body too large",
        422: "Idempotency-Key reused with another body",
        429: "Too many requests; see Retry-After",
    }.items()
}


def _staff_need(request, permission: str) -> None:
    """Partners act on their own orders; staff on their session need what their role allows in the portal."""
    if caller_partner(request.user) is None and not request.user.has_perm(permission):
        raise PermissionDenied("Your role may not do this; the portal shows what it may.")


def _actor(request) -> Actor:
    partner = caller_partner(request.user)
    return Actor.for_partner(partner.code, request.user.pk) if partner else Actor.for_user(request.user)


def shipments_with_lines():
    return Shipment.objects.select_related("location").prefetch_related(
        Prefetch("lines", queryset=ShipmentLine.objects.all(), to_attr="loaded_lines")
    )


def order_queryset(user):
    """Orders the caller may see: a partner its own, staff all; prefetched for the serializer."""
    queryset = Order.objects.select_related("partner").prefetch_related(
        Prefetch("lines", to_attr="loaded_lines"),
        Prefetch("shipments", queryset=shipments_with_lines().order_by("pk"), to_attr="loaded_shipments"),
        Prefetch(
            "exceptions", queryset=FulfillmentException.objects.select_related("type").order_by("pk"), to_attr="loaded_exceptions"
        ),
    )
    partner = caller_partner(user)
    if partner is not None:
        return queryset.filter(partner=partner)
    if is_staff_caller(user):
        return queryset
    return queryset.none()


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    external_id = django_filters.CharFilter()
    updated_after = django_filters.IsoDateTimeFilter(
        method="changed_after",
        validators=[validate_utc_offset],
        help_text=(
            "Orders whose answer may have changed after this moment: the order, its lines, shipments or exceptions. "
            + MOMENT_HELP
        ),
    )

    class Meta:
        model = Order
        fields = ["status", "external_id", "updated_after"]

    def changed_after(self, queryset, name, value):
        return orders_changed_after(queryset, value)


class BatchRateThrottle(PartnerRateThrottle):
    """The partner's budget, one unit per order of the batch (at least one for a request that carries none)."""

    def cost(self, request) -> int:
        orders = request.data.get("orders") if isinstance(request.data, dict) else None
        return min(len(orders), batch.MAX_BATCH_ORDERS + 1) if isinstance(orders, list) and orders else 1


def _batch_items(data) -> list[dict]:
    """The batch's items, each {"order": {...}, "idempotency_key"?: str}; a ValidationError (400) for the whole
    request when its shape is wrong, before any order is read."""
    if not isinstance(data, dict) or set(data) != {"orders"}:
        raise serializers.ValidationError({"orders": ["Send an object with one field, orders: a list of orders."]})
    orders = data["orders"]
    if not isinstance(orders, list) or not 1 <= len(orders) <= batch.MAX_BATCH_ORDERS:
        raise serializers.ValidationError({"orders": [f"A list of 1 to {batch.MAX_BATCH_ORDERS} orders."]})
    problems = {}
    for index, item in enumerate(orders):
        if not isinstance(item, dict) or not isinstance(item.get("order"), dict) or set(item) - {"order", "idempotency_key"}:
            problems[str(index)] = ['Each item is {"order": {...}} with an optional "idempotency_key".']
        elif "idempotency_key" in item and not isinstance(item["idempotency_key"], str):
            problems[str(index)] = {"idempotency_key": ["A string."]}
    if problems:
        raise serializers.ValidationError({"orders": problems})
    return [
        {**item, "idempotency_key": item["idempotency_key"].strip()} if "idempotency_key" in item else item for item in orders
    ]


def _key_problem(key: str | None) -> tuple[str, str] | None:
    """What is wrong with an Idempotency-Key (the message, and the field's), or None."""
    if key is None:
        return None
    if key == "":
        return "The Idempotency-Key is empty; send a unique string per order attempt, or none at all.", "May not be blank."
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        return (
            f"The Idempotency-Key may be at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters.",
            f"At most {IDEMPOTENCY_KEY_MAX_LENGTH} characters; this one has {len(key)}.",
        )
    if "\x00" in key:
        return "The Idempotency-Key may not contain NUL characters.", "NUL characters are not allowed."
    return None


def _check_body_size(request) -> None:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.API_MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The body is {length} bytes; the limit is {settings.API_MAX_BODY_BYTES}.")


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter

    def get_queryset(self):
        return order_queryset(self.request.user).order_by("-created_at", "-id")

    def initial(self, request, *args, **kwargs):
        _check_body_size(request)
        super().initial(request, *args, **kwargs)

    def _answer(self, order_id: int, http_status: int) -> Response:
        order = order_queryset(self.request.user).get(pk=order_id)
        return Response(OrderSerializer(order, context={"request": self.request}).data, status=http_status)

    def _intake_outcome_answer(self, outcome: intake.IntakeOutcome) -> idempotency.Answer:
        if not outcome.created:
            body = error_body(
                OrderError.DUPLICATE_ORDER,
                f"You already sent order {outcome.order.external_id}; it is order {outcome.order.pk}.",
                order_id=outcome.order.pk,
            )
            return idempotency.Answer(status.HTTP_409_CONFLICT, JSONRenderer().render(body))
        order = outcome.order
        if any(loaded(order, name) is None for name in LOADED):
            # The services changed more than the order they left in memory (it was held, split, backordered).
            order = order_queryset(self.request.user).get(pk=order.pk)
        body = OrderSerializer(order, context={"request": self.request}).data
        return idempotency.Answer(status.HTTP_201_CREATED, JSONRenderer().render(body))

    @extend_schema(
        summary="Submit an order",
        request=OrderInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=(
                    "Any unique string per order attempt, at most 255 characters. A retry with the same key and body "
                    "gets the same answer again (header Idempotent-Replayed: true); kept 24 hours."
                ),
            )
        ],
        responses={201: OrderSerializer, 200: OrderSerializer, **{k: v for k, v in ERRORS.items() if k != 404}},
        description=(
            "A well-formed order is accepted (201) even when something in it needs a person (unknown SKU, unit not "
            "convertible, address that does not fit its country, price off the catalogue, a suspected duplicate): "
            "it is then on hold and `open_exceptions` says why. A clean order is allocated (or, same day, released) "
            "in the same request. Sending an `external_id` you already sent, without its Idempotency-Key, is 409 "
            "`duplicate_order` with the existing order's id."
        ),
    )
    def create(self, request):
        partner = caller_partner(request.user)
        if partner is None:
            raise PermissionDenied("Only partners submit orders; staff accounts read.")
        serializer = OrderInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body_fingerprint = idempotency.fingerprint(request.data)
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            key = key.strip()
        problem = _key_problem(key)
        if problem:
            message, field_message = problem
            return error_response(
                "validation_error", message, status.HTTP_400_BAD_REQUEST, fields={"Idempotency-Key": [field_message]}
            )

        answer = idempotency.idempotent(
            partner=partner,
            key=key,
            body_fingerprint=body_fingerprint,
            act=lambda: intake.order_intake(
                partner=partner, data=serializer.validated_data, body_fingerprint=body_fingerprint, actor=_actor(request)
            ),
            answer_of=self._intake_outcome_answer,
        )
        response = HttpResponse(answer.body, status=answer.status_code, content_type="application/json")
        if answer.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        summary="Submit up to 100 orders at once",
        request=BatchRequestSerializer,
        responses={200: BatchResponseSerializer, **{k: ERRORS[k] for k in (400, 401, 403, 413, 429)}},
        examples=[
            OpenApiExample("Two orders, one with a key", value=BATCH_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Created, duplicate, invalid", value=BATCH_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            f"For EDI and marketplace partners: up to {batch.MAX_BATCH_ORDERS} orders, each exactly the body of "
            "`POST /api/v1/orders/`, with its own optional `idempotency_key` (the header's rules, in the body). "
            "The answer is 200 with one result per order, at its `index`: `201` and the `order`, as the single "
            "intake answers it; `409` `duplicate_order` (or `request_in_progress`); `400` with the order's field "
            "errors; `422` when its key was used with another body. One bad order never fails the others. A key "
            "answered before replays that answer (`replayed: true`), whichever endpoint it was sent to. The "
            "throttle counts each order. The request itself is 400 only when it is not an object whose `orders` "
            f"is a list of 1 to {batch.MAX_BATCH_ORDERS} objects."
        ),
    )
    @action(detail=False, methods=["post"], throttle_classes=[BatchRateThrottle])
    def batch(self, request):
        partner = caller_partner(request.user)
        if partner is None:
            raise PermissionDenied("Only partners submit orders; staff accounts read.")
        items = _batch_items(request.data)
        results: list[dict | None] = [None] * len(items)
        accepted, positions = [], []
        for index, item in enumerate(items):
            problem = _key_problem(item.get("idempotency_key"))
            serializer = OrderInputSerializer(data=item["order"])
            if problem:
                results[index] = {
                    "status": 400,
                    **error_body("validation_error", problem[0], fields={"idempotency_key": [problem[1]]}),
                }
            elif not serializer.is_valid():
                results[index] = {"status": 400, **validation_error_body(serializer.errors)}
            else:
                accepted.append(
                    batch.BatchOrder(
                        serializer.validated_data, idempotency.fingerprint(item["order"]), item.get("idempotency_key")
                    )
                )
                positions.append(index)
        actor = _actor(request)
        answers = batch.order_intake_batch(
            partner=partner,
            orders=accepted,
            actor=actor,
            answer_of=lambda outcome: self._intake_outcome_answer(outcome),
        )
        for index, answer in zip(positions, answers, strict=True):
            if isinstance(answer, DomainError):
                results[index] = {"status": answer.http_status, **answer.as_dict()}
                continue
            body = json.loads(answer.body)
            result = {"status": answer.status_code, **({"order": body} if answer.status_code == 201 else body)}
            results[index] = {**result, "replayed": True} if answer.replayed else result
        listed = [{"index": index, **result} for index, result in enumerate(results)]
        return Response(
            {
                "created": sum(1 for r in listed if r["status"] == 201 and not r.get("replayed")),
                "failed": sum(1 for r in listed if r["status"] != 201),
                "results": listed,
            }
        )

    @extend_schema(summary="List your orders", responses={200: OrderSerializer(many=True), **{k: ERRORS[k] for k in (401, 429)}})
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="One order with lines, shipments and open exceptions",
        responses={200: OrderSerializer, **{k: ERRORS[k] for k in (401, 404, 429)}},
    )
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Cancel an order",
        request=None,
        responses={200: OrderSerializer, **{k: ERRORS[k] for k in (401, 403, 404, 409, 429)}},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        _staff_need(request, ACTION_PERMISSIONS["cancel"])
        order = self.get_object()
        atomic_retrying_deadlocks(
            lambda: lifecycle.order_cancel(order=order, reason="Cancelled by the partner", actor=_actor(request))
        )
        return self._answer(order.pk, status.HTTP_200_OK)

    @extend_schema(
        summary="Change the shipping address",
        request=AddressChangeSerializer,
        responses={
            200: OrderSerializer,
            202: OpenApiResponse(OrderSerializer, description="After release: recorded, a person follows up with the warehouse"),
            **{k: ERRORS[k] for k in (400, 401, 403, 404, 409, 429)},
        },
        examples=[OpenApiExample("New street", value={"line1": "2 Oak Ave", "postal_code": "62704"}, request_only=True)],
    )
    @action(detail=True, methods=["patch"], url_path="shipping-address")
    def shipping_address(self, request, pk=None):
        _staff_need(request, ACTION_PERMISSIONS["change_address"])
        order = self.get_object()
        serializer = AddressChangeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k in request.data}
        if not changes:
            raise serializers.ValidationError({"non_field_errors": ["Send at least one address field to change."]})
        result = atomic_retrying_deadlocks(
            lambda: address_services.order_change_address(order=order, changes=changes, actor=_actor(request))
        )
        return self._answer(order.pk, status.HTTP_200_OK if result.applied else status.HTTP_202_ACCEPTED)


AvailabilitySerializer = inline_serializer(
    "Availability",
    {
        "skus": serializers.ListField(
            child=inline_serializer(
                "SkuAvailability",
                {
                    "sku": serializers.CharField(),
                    "known": serializers.BooleanField(
                        help_text="An active SKU of the catalogue; an order for any other is held as unknown_sku."
                    ),
                    "available": serializers.IntegerField(),
                    "locations": serializers.ListField(
                        child=inline_serializer(
                            "LocationAvailability",
                            {
                                "location": serializers.CharField(),
                                "on_hand": serializers.IntegerField(),
                                "reserved": serializers.IntegerField(),
                                "available": serializers.IntegerField(),
                            },
                        )
                    ),
                },
            )
        ),
    },
)
MAX_AVAILABILITY_SKUS = 100
SKU_CODE_MAX_LENGTH = 64


class AvailabilityView(APIView):
    @extend_schema(
        summary="Available to promise per location and in total",
        parameters=[
            OpenApiParameter("sku", OpenApiTypes.STR, many=True, required=True, description="Repeat for several SKUs, up to 100.")
        ],
        responses={200: AvailabilitySerializer, **{k: ERRORS[k] for k in (400, 401, 429)}},
    )
    def get(self, request):
        codes = list(dict.fromkeys(code.strip() for code in request.query_params.getlist("sku") if code.strip()))
        odd = [code for code in codes if len(code) > SKU_CODE_MAX_LENGTH or "\x00" in code]
        if odd:
            return error_response(
                "validation_error",
                "A SKU code is at most 64 printable characters.",
                400,
                fields={"sku": [f"Not a SKU code: {odd[0][:80]!r}"]},
            )
        if not codes or len(codes) > MAX_AVAILABILITY_SKUS:
            problem = f"At most {MAX_AVAILABILITY_SKUS}; this asks for {len(codes)}." if codes else "Required."
            return error_response(
                "validation_error", f"Ask for 1 to {MAX_AVAILABILITY_SKUS} SKUs: ?sku=A&sku=B.", 400, fields={"sku": [problem]}
            )
        return Response({"skus": availability(codes)})


class ShortPickLineSerializer(StrictSerializer):
    line = PlainIntegerField()
    picked = PlainIntegerField(min_value=0)


# The fields each event type reads beside `type`; anything else is refused, so data sent under the wrong type is not lost.
EVENT_FIELDS = {
    "picked": set(),
    "short_picked": {"lines"},
    "packed": set(),
    "shipped": {"carrier", "tracking_number"},
    "label_failed": {"reason"},
    "delivered": set(),
}


class ShipmentEventSerializer(serializers.Serializer):
    type = StrictChoiceField(choices=list(EVENT_FIELDS))
    lines = serializers.ListField(
        child=ShortPickLineSerializer(),
        required=False,
        help_text="short_picked: units picked per order line id, each line once (lines not listed were picked in full).",
    )
    carrier = StrictCharField(max_length=64, required=False)
    tracking_number = StrictCharField(max_length=100, required=False)
    reason = StrictCharField(max_length=300, required=False)

    def validate(self, data):
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        foreign = sorted(set(self.initial_data) - {"type"} - EVENT_FIELDS[data["type"]])
        if foreign:
            raise serializers.ValidationError({name: [f"Not part of a {data['type']} event."] for name in foreign})
        named = [row["line"] for row in data.get("lines") or []]
        if len(named) != len(set(named)):
            raise serializers.ValidationError({"lines": ["Name each line once, with all it picked."]})
        needs = {"short_picked": ["lines"], "shipped": ["carrier", "tracking_number"], "label_failed": ["reason"]}.get(
            data["type"], []
        )
        missing = [name for name in needs if not data.get(name)]
        if missing:
            raise serializers.ValidationError({name: [f"Required for {data['type']}."] for name in missing})
        return data


def _apply_event(shipment: Shipment, event: dict, actor: Actor) -> None:
    kind = event["type"]
    if kind == "picked":
        shipments.shipment_pick(shipment=shipment, actor=actor, source_system="api")
    elif kind == "short_picked":
        picked = {row["line"]: row["picked"] for row in event["lines"]}
        shipments.shipment_short_pick(shipment=shipment, picked=picked, actor=actor, source_system="api")
    elif kind == "packed":
        shipments.shipment_pack(shipment=shipment, actor=actor)
    elif kind == "shipped":
        shipments.shipment_ship(
            shipment=shipment,
            carrier=event["carrier"],
            tracking_number=event["tracking_number"],
            actor=actor,
            source_system="api",
        )
    elif kind == "delivered":
        shipments.shipment_deliver(shipment=shipment, actor=actor)
    else:
        shipments.shipment_label_failed(shipment=shipment, reason=event["reason"], actor=actor, source_system="api")


class ShipmentEventView(APIView):
    @extend_schema(
        summary="Report a warehouse event on a shipment",
        request=ShipmentEventSerializer,
        responses={200: ShipmentSerializer, **{k: ERRORS[k] for k in (400, 401, 404, 409, 429)}},
        examples=[
            OpenApiExample(
                "Shipped", value={"type": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}, request_only=True
            ),
            OpenApiExample("Short pick", value={"type": "short_picked", "lines": [{"line": 31, "picked": 1}]}, request_only=True),
        ],
    )
    def post(self, request, pk: int):
        _check_body_size(request)
        _staff_need(request, "orders.change_shipment")
        shipment = Shipment.objects.filter(pk=pk, order__in=order_queryset(request.user)).select_related("location").first()
        if shipment is None:
            return error_response("not_found", "Not found.", 404)
        serializer = ShipmentEventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        atomic_retrying_deadlocks(lambda: _apply_event(shipment, serializer.validated_data, _actor(request)))
        shipment = shipments_with_lines().get(pk=shipment.pk)
        return Response(ShipmentSerializer(shipment).data)
