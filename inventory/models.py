from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.addresses import normalized_postal_code
from core.models import BusinessCalendar


class Location(models.Model):
    class Kind(models.TextChoices):
        WAREHOUSE = "warehouse", "Warehouse"
        STORE = "store", "Store"
        THIRD_PARTY = "3pl", "3PL"

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WAREHOUSE)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code of the site.")
    region = models.CharField(max_length=64, blank=True)
    postal_prefixes = models.JSONField(default=list, blank=True, help_text="Postal-code prefixes this site serves first.")
    ships_to = models.JSONField(default=list, blank=True, help_text="ISO country codes this site ships to.")
    daily_capacity = models.PositiveIntegerField(null=True, blank=True, help_text="Orders per day; empty means unlimited.")
    handling_days = models.PositiveSmallIntegerField(
        default=1, help_text="Working days from release to hand-over to the carrier."
    )
    calendar = models.ForeignKey(
        BusinessCalendar,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="locations",
        help_text="The days the site hands over to carriers. Empty: Monday to Friday, except the public holidays of its country.",
    )
    drift_tolerance_units = models.PositiveIntegerField(
        default=2, help_text="A WMS count within this many units of ours is taken as it is."
    )
    drift_tolerance_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("2.00"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="… or within this share of ours, whichever allows more. Further off, an inventory_drift exception opens.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def drift_within_tolerance(self, ours: int, counted: int) -> bool:
        """Whether a count this far from our figure is the ordinary noise of a busy floor."""
        difference = abs(counted - ours)
        return difference <= self.drift_tolerance_units or difference * 100 <= self.drift_tolerance_percent * ours

    def ships_to_country(self, country: str) -> bool:
        return (country or "").upper() in {c.upper() for c in self.ships_to}

    def serves_postal_code(self, postal_code: str) -> bool:
        code = normalized_postal_code(postal_code)
        return any(code.startswith(normalized_postal_code(prefix)) for prefix in self.postal_prefixes if prefix)


class Sku(models.Model):
    BASE_UOM = "each"

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    base_uom = models.CharField(max_length=16, default=BASE_UOM)
    case_pack = models.PositiveIntegerField(default=1, help_text="Base units in one case.")
    unit_price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Catalogue price per base unit."
    )
    service_level_percent = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=Decimal("95.00"),
        validators=[MinValueValidator(50), MaxValueValidator(Decimal("99.99"))],
        help_text="How often a replenishment cycle should end without a stockout; sets the safety stock.",
    )
    active = models.BooleanField(default=True)
    substitutes = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="substitute_for")
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "SKU"
        constraints = [
            models.CheckConstraint(condition=Q(case_pack__gte=1), name="sku_case_pack_positive"),
            models.CheckConstraint(
                condition=Q(service_level_percent__gte=50, service_level_percent__lt=100), name="sku_service_level_range"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def base_units_per(self, uom: str) -> int | None:
        """How many base units one `uom` holds, or None when the unit does not convert."""
        uom = uom.strip().lower()
        if uom == self.base_uom:
            return 1
        if uom == "case":
            return self.case_pack
        return None


class StockLevel(models.Model):
    """Counters for one SKU at one location; the ledger explains every change.

    reserved counts units promised to shipments; picked counts the part of
    those already taken off the shelf. Units leave on_hand when they ship.
    """

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock_levels")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="stock_levels")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    picked = models.IntegerField(default=0)
    safety_stock = models.PositiveIntegerField(default=0)
    reorder_point = models.PositiveIntegerField(default=0)
    lead_time_days = models.PositiveIntegerField(default=0, help_text="Days from ordering more to having it on the shelf.")
    review_period_days = models.PositiveIntegerField(default=7, help_text="Days between two looks at this stock.")
    demand_per_day = models.DecimalField(
        max_digits=12, decimal_places=3, default=Decimal(0), help_text="Mean daily demand at the last replenishment run."
    )
    demand_sigma = models.DecimalField(
        max_digits=12, decimal_places=3, default=Decimal(0), help_text="Its standard deviation from day to day."
    )
    planned_at = models.DateTimeField(null=True, blank=True, help_text="When replenishment last changed these figures.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["location__code", "sku__code"]
        permissions = [("resolve_drift", "Can accept, keep or recount a stock figure that drifted")]
        # What changed lately, for the availability the storefront is told of.
        indexes = [models.Index(fields=["updated_at"], name="stock_level_updated")]
        constraints = [
            models.UniqueConstraint(fields=["location", "sku"], name="stock_level_unique_location_sku"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"),
            models.CheckConstraint(condition=Q(picked__gte=0), name="stock_picked_not_negative"),
            models.CheckConstraint(condition=Q(picked__lte=F("reserved")), name="stock_picked_within_reserved"),
        ]

    def __str__(self) -> str:
        return f"{self.sku.code}@{self.location.code}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def days_of_cover(self) -> Decimal | None:
        """How many days what is available lasts at the current demand; None when nothing is asked for."""
        if not self.demand_per_day:
            return None
        return (Decimal(max(self.available, 0)) / self.demand_per_day).quantize(Decimal("0.1"))


class StockMovement(models.Model):
    """Append-only ledger: for every stock level, the sum of each delta column equals its counter."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt"
        ADJUSTMENT = "adjustment"
        RESERVATION = "reservation"
        RELEASE = "release"
        PICK = "pick"
        SHIP = "ship"
        RETURN = "return"
        SYNC_CORRECTION = "sync_correction"

    # Keyed by location and SKU (not by stock level) so a movement can be written
    # right after the conditional UPDATE without first looking the level up.
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="movements", db_index=False
    )  # (location, sku) is indexed
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    quantity = models.IntegerField(help_text="Units moved; negative only for downward adjustments.")
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    picked_delta = models.IntegerField(default=0)
    reason = models.CharField(max_length=200, blank=True)
    source_system = models.CharField(max_length=32, default="portal")
    reference = models.CharField(max_length=100, blank=True)
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["location", "sku"], name="movement_location_sku"),
            models.Index(fields=["reference"], name="movement_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} {self.sku_id}@{self.location_id}"


def _figure(value) -> str:
    """12, 12.5 or 0.3: at most one decimal, none when it is whole."""
    rounded = Decimal(value).quantize(Decimal("0.1"))
    return f"{rounded:.0f}" if rounded == rounded.to_integral_value() else f"{rounded:.1f}"


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


class SuggestionStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    ORDERED = "ordered", "Ordered"
    RECEIVED = "received", "Received"
    DISMISSED = "dismissed", "Dismissed"


OPEN_SUGGESTION_STATUSES = (SuggestionStatus.PROPOSED, SuggestionStatus.APPROVED, SuggestionStatus.ORDERED)


class ReplenishmentSuggestion(ConcurrentTransitionMixin, models.Model):
    """More of a SKU should be ordered for a location: how much, and the figures that say why.

    At most one is open per location and SKU; the replenishment run refreshes a proposed one.
    """

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="replenishment_suggestions")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="replenishment_suggestions")
    status = FSMField(max_length=16, choices=SuggestionStatus.choices, default=SuggestionStatus.PROPOSED, protected=True)
    quantity = models.PositiveIntegerField(help_text="Suggested units, rounded up to whole cases.")
    quantity_ordered = models.PositiveIntegerField(null=True, blank=True, help_text="Units on order with the supplier.")
    quantity_received = models.PositiveIntegerField(null=True, blank=True)
    demand_per_day = models.DecimalField(max_digits=12, decimal_places=3)
    demand_sigma = models.DecimalField(max_digits=12, decimal_places=3)
    demand_days = models.PositiveIntegerField(help_text="Days of order lines the demand was measured over.")
    lead_time_days = models.PositiveIntegerField()
    review_period_days = models.PositiveIntegerField()
    service_level_percent = models.DecimalField(max_digits=4, decimal_places=2)
    safety_stock = models.PositiveIntegerField()
    reorder_point = models.PositiveIntegerField()
    order_up_to = models.PositiveIntegerField()
    position = models.IntegerField(help_text="On hand - reserved + on order, when suggested.")
    note = models.CharField(max_length=300, blank=True, help_text="Why it was dismissed, or what the buyer said.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "sku"],
                condition=Q(status__in=OPEN_SUGGESTION_STATUSES),
                name="suggestion_one_open_per_level",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="suggestion_quantity_positive"),
        ]
        indexes = [models.Index(fields=["status", "location"], name="suggestion_status_location")]

    def __str__(self) -> str:
        return f"{self.quantity} of {self.sku_id}@{self.location_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_SUGGESTION_STATUSES

    @property
    def reason(self) -> str:
        """The figures in words: "12 a day over 28 days, lead time 5 days, 95 %: reorder at 84, have 60"."""
        return (
            f"{_figure(self.demand_per_day)} a day over {_days(self.demand_days)}, lead time {_days(self.lead_time_days)}, "
            f"{_figure(self.service_level_percent)} %: reorder at {self.reorder_point}, have {self.position}"
        )

    @transition(field=status, source=SuggestionStatus.PROPOSED, target=SuggestionStatus.APPROVED)
    def approve(self) -> None:
        pass

    @transition(field=status, source=[SuggestionStatus.PROPOSED, SuggestionStatus.APPROVED], target=SuggestionStatus.ORDERED)
    def mark_ordered(self, quantity: int) -> None:
        self.quantity_ordered = quantity

    @transition(field=status, source=SuggestionStatus.ORDERED, target=SuggestionStatus.RECEIVED)
    def receive(self, quantity: int) -> None:
        self.quantity_received = quantity

    @transition(field=status, source=list(OPEN_SUGGESTION_STATUSES), target=SuggestionStatus.DISMISSED)
    def dismiss(self, reason: str) -> None:
        self.note = reason


class SuggestionEvent(models.Model):
    """Who moved a suggestion, from what to what, and why. Append-only."""

    suggestion = models.ForeignKey(ReplenishmentSuggestion, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.CharField(max_length=150)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.name} by {self.actor}"
