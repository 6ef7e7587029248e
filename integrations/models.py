"""The systems around the portal, what they told us (inbound events) and what we tell them (the outbox)."""

from __future__ import annotations

import base64
import secrets
import uuid

from django.db import models
from django.utils import timezone

from orders.models import ServiceLevel


class SystemKind(models.TextChoices):
    STOREFRONT = "storefront", "Storefront"
    ERP = "erp", "ERP"
    WMS = "wms", "WMS"


class Adapter(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    GENERIC_STOREFRONT = "generic_storefront", "Generic storefront (Standard Webhooks)"
    GENERIC_ERP = "generic_erp", "Generic ERP (Standard Webhooks)"
    GENERIC_WMS = "generic_wms", "Generic WMS (Standard Webhooks)"


# Which states each kind of system owns: its word on them is the truth we apply.
OWNED_STATES = {
    SystemKind.STOREFRONT: ("the customer's order",),
    SystemKind.ERP: ("invoices", "credit holds"),
    SystemKind.WMS: ("physical counts", "shipment progress"),
}


def new_standard_webhooks_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class ExternalSystem(models.Model):
    slug = models.SlugField(max_length=50, unique=True, help_text="Its webhooks arrive at /integrations/<slug>/webhooks/.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=SystemKind.choices)
    adapter = models.CharField(max_length=32, choices=Adapter.choices)
    base_url = models.URLField(blank=True, help_text="Where the outbox delivers its messages; empty: it receives none.")
    active = models.BooleanField(default=True, help_text="An inactive system's webhooks are refused and nothing is sent to it.")
    secret = models.CharField(max_length=200, help_text="Signs what we send; checks what it sends.")
    previous_secret = models.CharField(
        max_length=200, blank=True, help_text="Still accepted on what it sends, until the rotation is finished."
    )
    partner = models.ForeignKey(
        "orders.Partner",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="external_systems",
        help_text="A storefront's orders arrive as this partner's.",
    )
    locations = models.ManyToManyField(
        "inventory.Location", blank=True, related_name="external_systems", help_text="A WMS runs these; none: every location."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def owns(self) -> tuple[str, ...]:
        return OWNED_STATES.get(self.kind, ())

    @property
    def accepted_secrets(self) -> list[str]:
        return [s for s in (self.secret, self.previous_secret) if s]


class ShippingMapping(models.Model):
    """How a storefront's shipping line (its code or title) maps to our service level."""

    system = models.ForeignKey(ExternalSystem, on_delete=models.CASCADE, related_name="shipping_mappings")
    shipping_code = models.CharField(max_length=200, help_text="The shipping line's code or title, compared without case.")
    service_level = models.CharField(max_length=16, choices=ServiceLevel.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["system", "shipping_code"], name="shipping_mapping_unique")]

    def __str__(self) -> str:
        return f"{self.system}: {self.shipping_code} → {self.service_level}"


class InboundStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    STALE = "stale", "Ignored as stale"


class InboundEvent(models.Model):
    """One webhook as it arrived: kept byte for byte, whatever became of it."""

    system = models.ForeignKey(ExternalSystem, on_delete=models.PROTECT, related_name="inbound_events")
    sender_id = models.CharField(max_length=200, help_text="The sender's id for this message (webhook id).")
    topic = models.CharField(max_length=100, blank=True)
    body = models.BinaryField()
    headers = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(help_text="When the sender says it happened: events of one subject apply in this order.")
    received_at = models.DateTimeField(default=timezone.now)
    subject = models.CharField(max_length=120, blank=True, help_text="What it is about (an order, a shipment), once read.")
    status = models.CharField(max_length=16, choices=InboundStatus.choices, default=InboundStatus.RECEIVED)
    error = models.TextField(blank=True)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="inbound_events", db_index=False
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["system", "sender_id"], name="inbound_event_sender_id_unique")]
        indexes = [
            models.Index(fields=["order", "received_at"], name="inbound_event_order"),
            models.Index(fields=["status", "received_at"], name="inbound_event_status"),
            models.Index(fields=["system", "subject", "occurred_at"], name="inbound_event_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.sender_id} {self.topic}"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")


class OutboxMessage(models.Model):
    """Something we tell other systems, written in the transaction of the change it tells of."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Stable across every retry.")
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="outbox_messages", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["order", "created_at"], name="outbox_message_order")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead"


class Delivery(models.Model):
    """One message to one system, tried until it is acknowledged or its attempts run out."""

    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Stable across every retry.")
    message = models.ForeignKey(OutboxMessage, on_delete=models.PROTECT, related_name="deliveries")
    system = models.ForeignKey(ExternalSystem, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        permissions = [("retry_sync", "Can send a dead delivery or apply a failed event again")]
        constraints = [models.UniqueConstraint(fields=["message", "system"], name="delivery_message_system_unique")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due", condition=models.Q(status=DeliveryStatus.PENDING)),
            models.Index(fields=["system", "status"], name="delivery_system_status"),
        ]

    def __str__(self) -> str:
        return f"{self.message.type} to {self.system} ({self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"


class ReportedStock(models.Model):
    """The last figure another system gave for one item at one place (the storefront's available, the WMS's count)."""

    system = models.ForeignKey(ExternalSystem, on_delete=models.CASCADE, related_name="reported_stock")
    item_ref = models.CharField(max_length=100, help_text="The item as the system names it (SKU, inventory item id).")
    location_ref = models.CharField(max_length=100, help_text="The place as the system names it.")
    sku = models.ForeignKey("inventory.Sku", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    location = models.ForeignKey("inventory.Location", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    quantity = models.IntegerField(null=True, blank=True, help_text="Empty: the system does not track this item.")
    reported_at = models.DateTimeField()
    event = models.ForeignKey(InboundEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "item_ref", "location_ref"], name="reported_stock_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.system}: {self.item_ref}@{self.location_ref} = {self.quantity}"


class Invoice(models.Model):
    """An invoice the ERP posted for a shipment."""

    system = models.ForeignKey(ExternalSystem, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=100)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="invoices")
    shipment = models.ForeignKey("orders.Shipment", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    posted_at = models.DateTimeField()
    event = models.ForeignKey(InboundEvent, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["system", "number"], name="invoice_number_unique")]

    def __str__(self) -> str:
        return f"{self.system}: invoice {self.number}"


class PublishedAvailability(models.Model):
    """The available-to-sell figure the storefronts were last told for one SKU at one location."""

    location = models.ForeignKey("inventory.Location", on_delete=models.CASCADE, related_name="+")
    sku = models.ForeignKey("inventory.Sku", on_delete=models.CASCADE, related_name="+")
    available = models.IntegerField()
    published_at = models.DateTimeField()
    message = models.ForeignKey(OutboxMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "published availability"
        constraints = [models.UniqueConstraint(fields=["location", "sku"], name="published_availability_unique")]

    def __str__(self) -> str:
        return f"{self.sku_id}@{self.location_id}: {self.available}"


class SyncCursor(models.Model):
    """How far a periodic job has looked (the stock levels changed since its last run, for one)."""

    name = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
