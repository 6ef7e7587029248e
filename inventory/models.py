from __future__ import annotations

from django.db import models
from django.db.models import F, Q

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
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

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
    active = models.BooleanField(default=True)
    substitutes = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="substitute_for")
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "SKU"
        constraints = [models.CheckConstraint(condition=Q(case_pack__gte=1), name="sku_case_pack_positive")]

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
    lead_time_days = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["location__code", "sku__code"]
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
