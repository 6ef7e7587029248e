from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now, Upper
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.priority import Priority
from exceptions.models import OPEN_STATUSES


class ServiceLevel(models.TextChoices):
    STANDARD = "standard", "Standard"
    EXPRESS = "express", "Express"
    SAME_DAY = "same_day", "Same day"


class CustomerTier(models.TextChoices):
    STANDARD = "standard", "Standard"
    PRIORITY = "priority", "Priority"
    STRATEGIC = "strategic", "Strategic"


class Partner(models.Model):
    """A sales channel that sends orders: a storefront, a marketplace, an EDI feed, an API client."""

    class Kind(models.TextChoices):
        STOREFRONT = "storefront", "Storefront"
        MARKETPLACE = "marketplace", "Marketplace"
        EDI = "edi", "EDI"
        API = "api", "API"

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STOREFRONT)
    api_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="partner"
    )
    webhook_secret = models.CharField(max_length=128, blank=True)
    default_priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    price_tolerance_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=5,
        help_text="A unit price further than this from the catalogue price holds the order for a look.",
    )
    price_override_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=25,
        help_text="A person may accept a unit price up to this far from the catalogue price; beyond it, the line goes.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class OrderStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    READY = "ready", "Ready"
    ON_HOLD = "on_hold", "On hold"
    ALLOCATED = "allocated", "Allocated"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    BACKORDERED = "backordered", "Backordered"
    RELEASED = "released", "Released"
    PARTIALLY_SHIPPED = "partially_shipped", "Partially shipped"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"


S = OrderStatus
# The largest quantity a line can hold in the SKU's base unit (a PostgreSQL integer column).
BASE_QUANTITY_LIMIT = 2_147_483_647
HOLDABLE = [S.RECEIVED, S.READY, S.ALLOCATED, S.BACKORDERED, S.AWAITING_APPROVAL]
CANCELLABLE = [S.RECEIVED, S.READY, S.ON_HOLD, S.ALLOCATED, S.AWAITING_APPROVAL, S.BACKORDERED, S.RELEASED]
# With the warehouse: an address change then needs a person, who tells the warehouse.
AFTER_RELEASE = [S.RELEASED, S.PARTIALLY_SHIPPED]
# Before release, the address can simply be replaced.
ADDRESS_EDITABLE = [S.RECEIVED, S.READY, S.ON_HOLD, S.ALLOCATED, S.AWAITING_APPROVAL, S.BACKORDERED]
# Holding a plan (or a backorder) made for the address the order had.
PLANNED_FOR_ITS_ADDRESS = [S.ALLOCATED, S.AWAITING_APPROVAL, S.BACKORDERED]


# What a service or a selector loaded along with an order or a shipment, as plain attributes:
# `loaded_lines`, `loaded_shipments` and `loaded_exceptions`, set by Prefetch(..., to_attr=...) or by
# the service that has just stored them. When present they are complete and current; a reader that
# finds none asks the database. A service that changes them in the database forgets them.
LOADED = ("lines", "shipments", "exceptions")


def loaded(instance: models.Model, name: str) -> list | None:
    """The related `name` objects loaded with `instance`, or None when they were not."""
    return getattr(instance, f"loaded_{name}", None)


def forget_loaded(instance: models.Model) -> None:
    """Drop what was loaded with `instance`: the next read asks the database."""
    for name in LOADED:
        instance.__dict__.pop(f"loaded_{name}", None)


def lines_resolved(order: Order) -> bool:
    """Every line still wanted names a known SKU in a unit that converts to the SKU's base unit."""
    lines = loaded(order, "lines")
    if lines is not None:
        return all(line.sku_id is not None and line.base_quantity is not None for line in lines if not line.cancelled)
    return not order.lines.filter(cancelled=False).filter(Q(sku__isnull=True) | Q(base_quantity__isnull=True)).exists()


def no_blocking_exception_open(order: Order) -> bool:
    """A blocking exception is open on this order; resolve it first."""
    exceptions = loaded(order, "exceptions")
    if exceptions is not None:
        return not any(exception.status in OPEN_STATUSES and exception.type.blocking for exception in exceptions)
    return not order.exceptions.filter(status__in=OPEN_STATUSES, type__blocking=True).exists()


def nothing_picked(order: Order) -> bool:
    """Units already off the shelf cannot be cancelled from here; the warehouse must put them away first."""
    return not order.shipments.filter(status__in=[ShipmentStatus.PICKED, ShipmentStatus.PACKED]).exists()


class Order(ConcurrentTransitionMixin, models.Model):
    # Indexed by the (partner, external_id) unique constraint, which leads with it.
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="orders", db_index=False)
    external_id = models.CharField(max_length=100)
    status = FSMField(max_length=24, choices=OrderStatus.choices, default=OrderStatus.RECEIVED, protected=True)
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    service_level = models.CharField(max_length=16, choices=ServiceLevel.choices, default=ServiceLevel.STANDARD)
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True)
    customer_tier = models.CharField(max_length=16, choices=CustomerTier.choices, default=CustomerTier.STANDARD)
    ship_name = models.CharField(max_length=200, blank=True)
    ship_line1 = models.CharField(max_length=200, blank=True)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100, blank=True)
    ship_region = models.CharField(max_length=100, blank=True)
    ship_postal_code = models.CharField(max_length=20, blank=True)
    ship_country = models.CharField(max_length=2, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    placed_at = models.DateTimeField()
    promised_ship_by = models.DateTimeField(null=True, blank=True)
    hold_reason = models.CharField(max_length=200, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    intake_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the order body as the partner sent it."
    )
    is_test = models.BooleanField(default=False, help_text="The channel marked it a test order.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # When anything a partner reads of the order last changed: the order, its lines and shipments (each change
    # writes an order event) or its exceptions. Kept by the database's triggers (migration 0015), in the
    # transaction of the change, so no path can forget it.
    changed_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "external_id"], name="order_unique_partner_external_id"),
        ]
        indexes = [
            # The suspected-duplicate check compares emails case-insensitively (UPPER(...) in SQL).
            models.Index(Upper("customer_email"), "created_at", name="order_email_upper_created"),
            models.Index(fields=["status"], name="order_status"),
            # The search box and the orders list: a number typed in any case, the newest orders first. Names and
            # emails typed in part have trigram indexes on PostgreSQL (migration 0013).
            models.Index(Upper("external_id"), name="order_external_id_upper"),
            models.Index(fields=["placed_at", "id"], name="order_placed"),
            # GET /api/v1/orders/?updated_after=: the partner's orders changed since, one range of this index.
            models.Index(fields=["partner", "changed_at", "id"], name="order_partner_changed"),
            # The admin's country filter, newest first within the country.
            models.Index(fields=["ship_country", "placed_at", "id"], name="order_country_placed"),
        ]
        permissions = [
            ("cancel_order", "Can cancel orders"),
            ("cancel_line", "Can cancel order lines"),
            ("release_hold", "Can release orders from hold"),
            ("correct_address", "Can correct shipping addresses"),
            ("approve_split", "Can approve or reject split shipments"),
            ("reallocate_order", "Can reallocate orders to another location"),
            ("substitute_sku", "Can substitute a SKU on an order line"),
            ("accept_price", "Can accept a partner's unit price within the partner's limit"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}/{self.external_id}"

    @property
    def display_name(self) -> str:
        """How people know the order: the partner's code and the partner's own id for it."""
        return f"{self.partner.code} {self.external_id}"

    # Transitions only set fields on self; services lock, save, write events and move stock.

    @transition(
        field=status,
        source=S.RECEIVED,
        target=S.READY,
        conditions=[lines_resolved, no_blocking_exception_open],
        custom={"label": "Mark ready"},
    )
    def mark_ready(self) -> None:
        pass

    @transition(field=status, source=HOLDABLE, target=S.ON_HOLD, custom={"label": "Put on hold"})
    def hold(self, reason: str = "") -> None:
        self.hold_reason = reason[:200]

    @transition(
        field=status,
        source=S.ON_HOLD,
        target=S.READY,
        conditions=[lines_resolved, no_blocking_exception_open],
        custom={"label": "Release hold"},
    )
    def release_hold(self) -> None:
        self.hold_reason = ""

    @transition(
        field=status, source=S.READY, target=S.ALLOCATED, conditions=[no_blocking_exception_open], custom={"label": "Allocate"}
    )
    def allocate(self) -> None:
        pass

    @transition(
        field=status,
        source=S.READY,
        target=S.AWAITING_APPROVAL,
        conditions=[no_blocking_exception_open],
        custom={"label": "Propose split"},
    )
    def propose_split(self) -> None:
        pass

    @transition(
        field=status,
        source=S.AWAITING_APPROVAL,
        target=S.ALLOCATED,
        conditions=[no_blocking_exception_open],
        custom={"label": "Approve split"},
    )
    def approve_split(self) -> None:
        pass

    @transition(field=status, source=S.AWAITING_APPROVAL, target=S.BACKORDERED, custom={"label": "Reject split"})
    def reject_split(self) -> None:
        pass

    @transition(field=status, source=S.READY, target=S.BACKORDERED, custom={"label": "Backorder"})
    def backorder(self) -> None:
        pass

    @transition(
        field=status,
        source=S.BACKORDERED,
        target=S.READY,
        conditions=[no_blocking_exception_open],
        custom={"label": "Retry allocation"},
    )
    def retry_allocation(self) -> None:
        pass

    @transition(
        field=status, source=[S.ALLOCATED, S.BACKORDERED, S.AWAITING_APPROVAL], target=S.READY, custom={"label": "Reallocate"}
    )
    def reallocate(self) -> None:
        """Give back what is planned and allocate afresh, e.g. to a location a person chose."""

    @transition(
        field=status,
        source=S.ALLOCATED,
        target=S.RELEASED,
        conditions=[no_blocking_exception_open],
        custom={"label": "Release to warehouse"},
    )
    def release(self) -> None:
        pass

    @transition(field=status, source=[S.RELEASED, S.PARTIALLY_SHIPPED], target=S.PARTIALLY_SHIPPED, custom={"label": "Ship part"})
    def ship_part(self) -> None:
        pass

    @transition(field=status, source=[S.RELEASED, S.PARTIALLY_SHIPPED], target=S.SHIPPED, custom={"label": "Ship"})
    def ship(self) -> None:
        pass

    @transition(field=status, source=S.SHIPPED, target=S.DELIVERED, custom={"label": "Deliver"})
    def deliver(self) -> None:
        pass

    @transition(
        field=status, source=CANCELLABLE, target=S.CANCELLED, conditions=[nothing_picked], custom={"label": "Cancel order"}
    )
    def cancel(self, reason: str = "") -> None:
        self.cancel_reason = reason[:200]


class OrderLine(models.Model):
    """One ordered item. Allocated, shipped and cancelled count base units."""

    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", db_index=False
    )  # (order, line_number) is unique
    line_number = models.PositiveIntegerField()
    sku_code = models.CharField(max_length=64, help_text="The SKU as the partner sent it.")
    sku = models.ForeignKey("inventory.Sku", on_delete=models.PROTECT, null=True, blank=True, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    uom = models.CharField(max_length=16, default="each")
    base_quantity = models.PositiveIntegerField(null=True, blank=True, help_text="Quantity in the SKU's base unit, once known.")
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    quantity_allocated = models.PositiveIntegerField(default=0)
    quantity_shipped = models.PositiveIntegerField(default=0)
    quantity_cancelled = models.PositiveIntegerField(default=0)
    cancelled = models.BooleanField(default=False, help_text="Nothing more of this line will ship.")
    price_accepted = models.BooleanField(
        default=False, help_text="A person accepted the partner's unit price although it is off the catalogue's."
    )

    class Meta:
        ordering = ["order_id", "line_number"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_number"], name="order_line_unique_number"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(base_quantity__isnull=True)
                | Q(base_quantity__gte=F("quantity_allocated") + F("quantity_shipped") + F("quantity_cancelled")),
                name="order_line_quantities_within_ordered",
            ),
        ]
        indexes = [models.Index(Upper("sku_code"), name="order_line_sku_code_upper")]  # the search box

    def __str__(self) -> str:
        return f"{self.order_id}#{self.line_number} {self.sku_code} x{self.quantity} {self.uom}"

    @property
    def quantity_open(self) -> int:
        """Base units neither allocated, shipped nor cancelled."""
        return (self.base_quantity or 0) - self.quantity_allocated - self.quantity_shipped - self.quantity_cancelled


class ShipmentStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    RELEASED = "released", "Released"
    PICKED = "picked", "Picked"
    PACKED = "packed", "Packed"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"


SS = ShipmentStatus


class Shipment(ConcurrentTransitionMixin, models.Model):
    ACTIVE = [SS.PLANNED, SS.RELEASED, SS.PICKED, SS.PACKED]

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="shipments")
    status = FSMField(max_length=16, choices=ShipmentStatus.choices, default=ShipmentStatus.PLANNED, protected=True)
    carrier = models.CharField(max_length=64, blank=True)
    service = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order_id", "id"]
        indexes = [
            models.Index(fields=["status"], name="shipment_status"),
            models.Index(fields=["shipped_at"], name="shipment_shipped_at"),  # the invoice watch looks back a window
            models.Index(Upper("tracking_number"), name="shipment_tracking_upper"),  # the search box
        ]

    def __str__(self) -> str:
        return f"shipment {self.pk} of order {self.order_id} from {self.location_id}"

    @transition(field=status, source=SS.PLANNED, target=SS.RELEASED, custom={"label": "Release"})
    def release(self) -> None:
        pass

    @transition(field=status, source=SS.RELEASED, target=SS.PICKED, custom={"label": "Picked"})
    def pick(self) -> None:
        pass

    @transition(field=status, source=SS.PICKED, target=SS.PACKED, custom={"label": "Packed"})
    def pack(self) -> None:
        pass

    @transition(field=status, source=[SS.PICKED, SS.PACKED], target=SS.SHIPPED, custom={"label": "Shipped"})
    def ship(self, *, carrier: str, tracking_number: str, shipped_at) -> None:
        self.carrier = carrier
        self.tracking_number = tracking_number
        self.shipped_at = shipped_at

    @transition(field=status, source=SS.SHIPPED, target=SS.DELIVERED, custom={"label": "Delivered"})
    def deliver(self, *, delivered_at) -> None:
        self.delivered_at = delivered_at

    @transition(field=status, source=[SS.PLANNED, SS.RELEASED], target=SS.CANCELLED, custom={"label": "Cancel"})
    def cancel(self) -> None:
        pass


class ShipmentLine(models.Model):
    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, related_name="lines", db_index=False
    )  # (shipment, order_line) is unique
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="shipment_lines")
    quantity = models.PositiveIntegerField(help_text="Base units.")

    class Meta:
        ordering = ["shipment_id", "order_line_id"]
        constraints = [
            models.UniqueConstraint(fields=["shipment", "order_line"], name="shipment_line_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="shipment_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of line {self.order_line_id} on shipment {self.shipment_id}"


class OrderEvent(models.Model):
    """Append-only audit trail of everything that touched an order."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        TRANSITION = "transition", "Status changed"
        SHIPMENT = "shipment", "Shipment status changed"
        ACTION = "action", "Action taken"
        NOTE = "note", "Note"
        INBOUND = "inbound", "Message received"
        OUTBOUND = "outbound", "Message sent"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events", db_index=False)  # (order, at) is indexed
    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=64)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    actor = models.CharField(max_length=150)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["order", "at"], name="order_event_order_at")]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind}:{self.name} by {self.actor}"


class RoutingRule(models.Model):
    """Which locations serve which orders. Rules are tried by priority (lowest number first);
    the first whose every filled-in condition matches decides. Empty conditions match anything."""

    name = models.CharField(max_length=100)
    priority = models.PositiveIntegerField(default=100, db_index=True, help_text="Lower numbers are tried first.")
    active = models.BooleanField(default=True)
    # match conditions
    partners = models.ManyToManyField(Partner, blank=True, related_name="routing_rules")
    destination_countries = models.JSONField(default=list, blank=True, help_text="ISO country codes; empty matches any.")
    postal_prefixes = models.JSONField(default=list, blank=True, help_text="Destination postal-code prefixes; empty matches any.")
    service_levels = models.JSONField(default=list, blank=True, help_text="standard, express, same_day; empty matches any.")
    customer_tiers = models.JSONField(default=list, blank=True, help_text="standard, priority, strategic; empty matches any.")
    min_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    max_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # outcome
    excluded_locations = models.ManyToManyField("inventory.Location", blank=True, related_name="+")
    allow_split = models.BooleanField(default=True)
    max_shipments = models.PositiveSmallIntegerField(default=2)
    split_requires_approval = models.BooleanField(default=False)
    preferred_carrier = models.CharField(max_length=64, blank=True)
    fallback_carrier = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(max_shipments__gte=1), name="routing_rule_max_shipments_positive"),
            models.CheckConstraint(
                condition=Q(min_order_value__isnull=True)
                | Q(max_order_value__isnull=True)
                | Q(min_order_value__lte=F("max_order_value")),
                name="routing_rule_value_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.priority}: {self.name}"


class RoutingRuleLocation(models.Model):
    """A preferred location of a rule; candidates are tried in rank order before any other location."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="ranked_locations")
    location = models.ForeignKey("inventory.Location", on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["rank", "id"]
        constraints = [models.UniqueConstraint(fields=["rule", "location"], name="routing_rule_location_unique")]

    def __str__(self) -> str:
        return f"{self.rank}. {self.location_id}"


class RoutingDecision(models.Model):
    """Why an order went where it went: the rule, every candidate and its verdict, the outcome."""

    class Outcome(models.TextChoices):
        SINGLE = "single", "One location fills the order"
        SPLIT = "split", "Split over several locations"
        SPLIT_PENDING = "split_pending", "Split proposed, waiting for approval"
        BACKORDER = "backorder", "Backordered"
        PARTIAL = "partial", "Short quantity re-allocated"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="routing_decisions")
    rule = models.ForeignKey(RoutingRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions")
    rule_name = models.CharField(max_length=100, help_text="As it was named when it decided.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    candidates = models.JSONField(default=list, help_text="[{location, rank, verdict, reason}] in the order they were tried.")
    plan = models.JSONField(default=list, help_text="[{location, lines: [{line, sku, quantity}]}]")
    short = models.JSONField(default=dict, blank=True, help_text="Line number -> base units nobody could supply.")
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.outcome} by {self.rule_name}"


IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyKey(models.Model):
    """A partner's Idempotency-Key with the body it came with and the answer it got, kept 24 hours.

    Created in the same transaction as the order it protects: the unique constraint
    makes a second request with the same key wait for, and then replay, the first.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    fingerprint = models.CharField(max_length=64)
    # Filled in before the transaction that created the row commits; nobody sees them empty.
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.BinaryField(null=True, help_text="The answer's body, byte for byte as it was sent.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "key"], name="idempotency_key_unique_per_partner")]

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.key}"


class PartnerSkuMapping(models.Model):
    """A partner's own code for one of our SKUs: intake reads a line sent with that code as our SKU."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="sku_mappings", db_index=False)
    partner_sku_code = models.CharField(max_length=64, help_text="The code as the partner sends it; matched ignoring case.")
    sku = models.ForeignKey("inventory.Sku", on_delete=models.PROTECT, related_name="partner_mappings")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partner__code", "partner_sku_code"]
        verbose_name = "partner SKU mapping"
        constraints = [
            # Leads with the partner: it also serves intake's look-up of one partner's codes.
            models.UniqueConstraint(
                "partner",
                Upper("partner_sku_code"),
                name="partner_sku_mapping_unique_code",
                violation_error_message="This partner already has a mapping for that code (codes match ignoring case).",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.partner_sku_code} → {self.sku_id}"
