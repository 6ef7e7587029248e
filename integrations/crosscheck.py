"""The cross-system view of one order: what the storefront, the ERP and the WMS last said and acknowledged,
next to what we say, and where they disagree, in words.

Each disagreement rule is a small function of the facts read once for the order, answering a sentence or
None. The facts are read in a fixed number of queries however long the order's history: the newest event
per system, topic and subject, and the newest delivery per system and message type (window functions),
plus the deliveries still unacknowledged, the shipments, the invoices and the order's cancellation and
address corrections.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from core.addresses import normalized_postal_code
from orders.addresses import ADDRESS_FIELDS
from orders.models import Order, OrderEvent, OrderStatus, Shipment, ShipmentStatus

from .mapping import shopify_address
from .models import Delivery, DeliveryStatus, ExternalSystem, InboundEvent, Invoice, SystemKind
from .services.outbox import MessageType

# A chatty order still reads a bounded number of rows: the newest per system, topic and subject is few.
NEWEST_ROWS_LIMIT = 200
UNACKNOWLEDGED_LIMIT = 50

SHIPPED = (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED)
ORDER_SHIPPED = (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.PARTIALLY_SHIPPED)
STOREFRONT_OPEN = ("unfulfilled", "open")
WMS_WORDS = {
    "shipment.picked": "picked",
    "shipment.short_picked": "short-picked",
    "shipment.packed": "packed",
    "shipment.shipped": "shipped",
    "shipment.label_failed": "label failed",
    "shipment.delivered": "delivered",
    "inventory.counted": "counted stock",
}
WMS_SHIPPED_TOPICS = ("shipment.shipped", "shipment.delivered")
WMS_HANDLING_TOPICS = ("shipment.picked", "shipment.short_picked", "shipment.packed", "shipment.shipped")
STOREFRONT_CANCELLED_TOPICS = ("orders/cancelled", "order.cancelled")
STOREFRONT_ADDRESS_TOPICS = ("orders/create", "orders/updated", "order.created", "order.address_changed")
SHOPIFY_FULFILLMENT = {None: "unfulfilled", "partial": "partially fulfilled", "fulfilled": "fulfilled", "restocked": "restocked"}
CORRECTIONS = ("correct_address", "change_address")


def ago(when: datetime | None, now: datetime) -> str:
    """'2 h ago', as people say it."""
    if when is None:
        return "at an unknown time"
    seconds = max(0, (now - when).total_seconds())
    if seconds < 3600:
        return f"{max(1, int(seconds // 60))} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def payload_of(event: InboundEvent) -> dict:
    """The event's body as an object, and for a generic envelope its data; {} when it cannot be read."""
    try:
        payload = json.loads(bytes(event.body))
    except (ValueError, UnicodeDecodeError, TypeError):
        return {}
    if not isinstance(payload, dict):
        return {}
    data = payload.get("data")
    return data if isinstance(data, dict) else payload


def shipment_of(event: InboundEvent) -> int | None:
    if event.subject.startswith("shipment:") and event.subject[9:].isdigit():
        return int(event.subject[9:])
    value = payload_of(event).get("shipment_id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def storefront_state(event: InboundEvent) -> str:
    """What the storefront's event says of the order: unfulfilled, open, partially fulfilled, fulfilled, cancelled."""
    if event.topic in STOREFRONT_CANCELLED_TOPICS:
        return "cancelled"
    payload = payload_of(event)
    if payload.get("cancelled_at"):
        return "cancelled"
    status = payload.get("fulfillment_status")
    if event.topic.startswith("orders/"):  # Shopify: no fulfillment status means unfulfilled
        return SHOPIFY_FULFILLMENT.get(status, str(status))
    return str(status) if status else "open"


def storefront_address(event: InboundEvent) -> dict[str, str]:
    """The shipping address the event carries, by our field names (only those it names)."""
    address = payload_of(event).get("shipping_address")
    if not isinstance(address, dict):
        return {}
    if event.topic.startswith("orders/"):
        return shopify_address(address)
    return {name: str(address[name] or "") for name in ADDRESS_FIELDS if name in address}


def _comparable(name: str, value: str) -> str:
    value = " ".join(value.split()).casefold()
    return normalized_postal_code(value).casefold() if name == "postal_code" else value


def meaning(event: InboundEvent) -> str:
    """The event in a few words, as its system meant it."""
    kind = event.system.kind
    if kind == SystemKind.STOREFRONT:
        return storefront_state(event)
    if kind == SystemKind.WMS:
        words = WMS_WORDS.get(event.topic, event.topic or "a message")
        shipment = shipment_of(event)
        return f"shipment {shipment} {words}" if shipment else words
    if event.topic == "invoice.posted":
        number = payload_of(event).get("invoice_number")
        return f"invoice {number} posted" if number else "invoice posted"
    return {"credit_hold.placed": "credit hold placed", "credit_hold.released": "credit hold released"}.get(
        event.topic, event.topic or "a message"
    )


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, read once for the order."""

    order: Order
    now: datetime
    connected: set[str]  # the kinds of system that are active
    events: list[InboundEvent]  # the newest per system, topic and subject, newest first
    deliveries: list[Delivery]  # the newest per system and message type, newest first
    unacknowledged: list[Delivery]  # pending or dead, newest first
    shipments: list[Shipment]
    invoices: list[Invoice]
    corrections: list[OrderEvent]  # cancellations and address changes, newest first

    def said(self, kind: str, topics: tuple[str, ...] | None = None) -> list[InboundEvent]:
        return [e for e in self.events if e.system.kind == kind and (topics is None or e.topic in topics)]

    def told(self, kind: str, type: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries if d.system.kind == kind and (type is None or d.message.type == type)]

    @property
    def cancelled_at(self) -> datetime | None:
        return next((e.at for e in self.corrections if e.to_status == OrderStatus.CANCELLED), None)

    @property
    def shipped(self) -> list[Shipment]:
        return [s for s in self.shipments if s.status in SHIPPED]


# --- disagreement rules: each answers a sentence, or None when the systems agree ----------


def storefront_open_but_shipped(facts: Facts) -> str | None:
    """The storefront still shows the order open while we, or the WMS, shipped it, and it was not told since."""
    said = facts.said(SystemKind.STOREFRONT)
    if not said or storefront_state(said[0]) not in STOREFRONT_OPEN:
        return None
    last_word = said[0].occurred_at
    told = [
        d
        for d in facts.told(SystemKind.STOREFRONT, MessageType.FULFILLMENT)
        if d.status == DeliveryStatus.DELIVERED and d.delivered_at and d.delivered_at > last_word
    ]
    if told:
        return None
    ours = max((s.shipped_at for s in facts.shipped if s.shipped_at), default=None)
    wms = next((e for e in facts.said(SystemKind.WMS, WMS_SHIPPED_TOPICS)), None)
    if ours is not None:
        return f"storefront says {storefront_state(said[0])}; we shipped it {ago(ours, facts.now)}"
    if wms is not None:
        return f"storefront says {storefront_state(said[0])}; WMS shipped it {ago(wms.occurred_at, facts.now)}"
    return None


def storefront_cancelled_we_did_not(facts: Facts) -> str | None:
    said = facts.said(SystemKind.STOREFRONT)
    if not said or storefront_state(said[0]) != "cancelled" or facts.order.status == OrderStatus.CANCELLED:
        return None
    ours = facts.order.get_status_display().lower()
    return f"storefront says cancelled {ago(said[0].occurred_at, facts.now)}; we have it {ours}"


def wms_shipped_we_did_not(facts: Facts) -> str | None:
    """The WMS reported a shipment shipped that we do not have shipped."""
    ours = {s.pk: s for s in facts.shipments}
    for event in facts.said(SystemKind.WMS, WMS_SHIPPED_TOPICS):
        shipment = ours.get(shipment_of(event))
        if shipment is not None and shipment.status not in SHIPPED:
            return (
                f"WMS shipped it {ago(event.occurred_at, facts.now)}; "
                f"we have shipment {shipment.pk} {shipment.get_status_display().lower()}"
            )
    return None


def cancelled_but_wms_carries_on(facts: Facts) -> str | None:
    """We cancelled the order, and the WMS acknowledged no cancellation, or reported handling it after."""
    if facts.order.status != OrderStatus.CANCELLED:
        return None
    cancelled_at = facts.cancelled_at
    after = [
        e for e in facts.said(SystemKind.WMS, WMS_HANDLING_TOPICS) if cancelled_at is not None and e.occurred_at > cancelled_at
    ]
    if after:
        return f"we cancelled it; WMS reported it {WMS_WORDS[after[0].topic]} {ago(after[0].occurred_at, facts.now)}, after"
    unacknowledged = [d for d in facts.unacknowledged if d.message.type == MessageType.PICK_TICKET_CANCELLED]
    ticketed = {d.system_id for d in facts.told(SystemKind.WMS, MessageType.PICK_TICKET)}
    cancelled = {d.system_id for d in facts.told(SystemKind.WMS, MessageType.PICK_TICKET_CANCELLED)}
    if unacknowledged or ticketed - cancelled:
        return "we cancelled it; WMS acknowledged no cancellation"
    return None


def shipped_not_invoiced(facts: Facts) -> str | None:
    """A shipment left more than INVOICE_GRACE_HOURS ago and the ERP invoiced neither it nor the whole order."""
    if SystemKind.ERP not in facts.connected or facts.order.is_test:
        return None
    if any(invoice.shipment_id is None for invoice in facts.invoices):
        return None
    invoiced = {invoice.shipment_id for invoice in facts.invoices}
    until = facts.now - timedelta(hours=settings.INVOICE_GRACE_HOURS)
    late = [s for s in facts.shipped if s.shipped_at and s.shipped_at < until and s.pk not in invoiced]
    if not late:
        return None
    return f"ERP has no invoice for shipment {late[0].pk}, shipped {ago(late[0].shipped_at, facts.now)}"


def dead_delivery(facts: Facts) -> str | None:
    """A message to a system ran out of attempts: it never acknowledged it."""
    dead = [d for d in facts.unacknowledged if d.status == DeliveryStatus.DEAD]
    if not dead:
        return None
    first = dead[0]
    more = f" (and {len(dead) - 1} more)" if len(dead) > 1 else ""
    attempts = f"{first.attempts} attempt{'' if first.attempts == 1 else 's'}"
    system = f"{first.system.get_kind_display()} ({first.system.slug})"
    return f"{system} never acknowledged {first.message.type} (dead after {attempts}){more}"


def storefront_address_differs(facts: Facts) -> str | None:
    """The storefront's last address is not the one we ship to (we corrected it, or kept ours after release)."""
    said = facts.said(SystemKind.STOREFRONT, STOREFRONT_ADDRESS_TOPICS)
    if not said:
        return None
    theirs = storefront_address(said[0])
    differing = [
        name
        for name, value in theirs.items()
        if _comparable(name, value) != _comparable(name, getattr(facts.order, f"ship_{name}"))
    ]
    if not differing:
        return None
    fields = ", ".join(name.replace("_", " ") for name in differing)
    corrected = next(
        (e for e in facts.corrections if e.name in CORRECTIONS and e.at > said[0].occurred_at),
        None,
    )
    if corrected is not None:
        return f"storefront still has the old address ({fields}); we corrected it {ago(corrected.at, facts.now)}"
    return f"storefront's address differs from ours ({fields})"


Rule = Callable[[Facts], str | None]

RULES: tuple[Rule, ...] = (
    storefront_open_but_shipped,
    storefront_cancelled_we_did_not,
    wms_shipped_we_did_not,
    cancelled_but_wms_carries_on,
    shipped_not_invoiced,
    dead_delivery,
    storefront_address_differs,
)


# --- the view ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemColumn:
    kind: str
    label: str
    connected: bool
    said: InboundEvent | None
    means: str
    acknowledged: Delivery | None


@dataclass(frozen=True)
class CrossCheck:
    order: Order
    columns: list[SystemColumn]
    shipments: list[Shipment]
    invoices: list[Invoice]
    disagreements: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The disagreements as one line, each clause once: 'storefront says unfulfilled; WMS shipped it 2 h ago'."""
        clauses: list[str] = []
        for sentence in self.disagreements:
            for clause in sentence.split("; "):
                if clause not in clauses:
                    clauses.append(clause)
        return "; ".join(clauses)


def _newest_events(order_id: int) -> list[InboundEvent]:
    newest = Window(
        RowNumber(),
        partition_by=[F("system_id"), F("topic"), F("subject")],
        order_by=[F("occurred_at").desc(), F("received_at").desc(), F("id").desc()],
    )
    return list(
        InboundEvent.objects.filter(order_id=order_id)
        .select_related("system")
        .defer("headers")
        .annotate(newest=newest)
        .filter(newest=1)
        .order_by("-occurred_at", "-received_at", "-id")[:NEWEST_ROWS_LIMIT]
    )


def _deliveries():
    return Delivery.objects.select_related("message", "system").defer("message__payload")


def _newest_deliveries(order_id: int) -> list[Delivery]:
    newest = Window(
        RowNumber(),
        partition_by=[F("system_id"), F("message__type")],
        order_by=[F("created_at").desc(), F("id").desc()],
    )
    return list(
        _deliveries()
        .filter(message__order_id=order_id)
        .annotate(newest=newest)
        .filter(newest=1)
        .order_by("-created_at", "-id")[:NEWEST_ROWS_LIMIT]
    )


def facts_for(order: Order, *, now: datetime | None = None) -> Facts:
    """The order's facts in seven queries, however many events and deliveries it has."""
    return Facts(
        order=order,
        now=now or timezone.now(),
        connected=set(ExternalSystem.objects.filter(active=True).values_list("kind", flat=True).distinct()),
        events=_newest_events(order.pk),
        deliveries=_newest_deliveries(order.pk),
        unacknowledged=list(
            _deliveries()
            .filter(message__order_id=order.pk, status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEAD])
            .order_by("-created_at", "-id")[:UNACKNOWLEDGED_LIMIT]
        ),
        shipments=list(Shipment.objects.filter(order_id=order.pk).select_related("location").order_by("pk")),
        invoices=list(Invoice.objects.filter(order_id=order.pk).order_by("posted_at", "pk")),
        corrections=list(
            OrderEvent.objects.filter(order_id=order.pk)
            .filter(Q(kind=OrderEvent.Kind.TRANSITION, to_status=OrderStatus.CANCELLED) | Q(name__in=CORRECTIONS))
            .order_by("-at", "-id")[:UNACKNOWLEDGED_LIMIT]
        ),
    )


def disagreements(facts: Facts) -> list[str]:
    return [sentence for rule in RULES if (sentence := rule(facts))]


def cross_check(order: Order, *, now: datetime | None = None) -> CrossCheck:
    """The storefront, ERP and WMS columns for the order, and their disagreements with us and each other."""
    facts = facts_for(order, now=now)
    columns = []
    for kind, label in SystemKind.choices:
        said = facts.said(kind)
        told = facts.told(kind)
        columns.append(
            SystemColumn(
                kind=kind,
                label=label,
                connected=kind in facts.connected,
                said=said[0] if said else None,
                means=meaning(said[0]) if said else "",
                acknowledged=told[0] if told else None,
            )
        )
    return CrossCheck(
        order=order,
        columns=columns,
        shipments=facts.shipments,
        invoices=facts.invoices,
        disagreements=disagreements(facts),
    )
