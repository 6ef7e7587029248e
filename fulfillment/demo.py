"""Demo data for `manage.py seed_demo`: idempotent, built from the Northwind data set.

Everything goes through the domain services, so the demo has the same audit
trail and ledger a real day would leave. Running it again creates nothing new
and does not touch what people changed in the meantime.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from core.actors import Actor
from core.roles import Role
from exceptions.models import ExceptionType, FulfillmentException, Queue, SlaPolicy
from exceptions.services import FALLBACK_SLA_MINUTES, exception_priority, exception_raise, sla_sweep
from inventory.models import Location, Sku, StockLevel
from inventory.services import stock_receive
from orders.addresses import Address
from orders.models import Order, OrderStatus, Partner, RoutingRule, Shipment
from orders.services import allocation as allocation_services
from orders.services import intake as intake_services
from orders.services import lifecycle as lifecycle_services
from orders.services import partners as partner_services
from orders.services import reservations as reservation_services
from orders.services import shipments as shipment_services

DATA = Path(__file__).resolve().parent / "demo_data" / "northwind"
SEED = Actor.job("seed_demo")

COUNTRY_CODES = {
    "Argentina": "AR",
    "Austria": "AT",
    "Belgium": "BE",
    "Brazil": "BR",
    "Canada": "CA",
    "Denmark": "DK",
    "Finland": "FI",
    "France": "FR",
    "Germany": "DE",
    "Ireland": "IE",
    "Italy": "IT",
    "Mexico": "MX",
    "Norway": "NO",
    "Poland": "PL",
    "Portugal": "PT",
    "Spain": "ES",
    "Sweden": "SE",
    "Switzerland": "CH",
    "UK": "GB",
    "USA": "US",
    "Venezuela": "VE",
}
EUROPE = ["AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT", "NO", "PL", "PT", "SE"]
AMERICAS = ["AR", "BR", "CA", "MX", "US", "VE"]


@dataclass(frozen=True)
class DemoLocation:
    code: str
    name: str
    kind: str
    country: str
    region: str
    ships_to: list[str]
    stock_share: float  # of each product's Northwind units in stock, 0 for none


LOCATIONS = [
    DemoLocation("WH-EAST", "East Coast DC, Newark", Location.Kind.WAREHOUSE, "US", "NJ", AMERICAS, 3.0),
    DemoLocation("WH-WEST", "West Coast DC, Reno", Location.Kind.WAREHOUSE, "US", "NV", ["US", "CA", "MX"], 1.5),
    DemoLocation("WH-EU", "EU Hub, Venlo", Location.Kind.WAREHOUSE, "NL", "LI", EUROPE, 3.0),
    DemoLocation("STORE-LON", "London flagship store", Location.Kind.STORE, "GB", "LND", ["GB", "IE"], 0.5),
    DemoLocation("3PL-BR", "Partner 3PL, São Paulo", Location.Kind.THIRD_PARTY, "BR", "SP", ["AR", "BR", "VE"], 1.0),
]

PARTNERS = [
    ("northwind-shop", "Northwind web shop", Partner.Kind.STOREFRONT),
    ("marketplace", "Marketplace channel", Partner.Kind.MARKETPLACE),
    ("edi-wholesale", "Wholesale EDI feed", Partner.Kind.EDI),
]

USERS = [
    ("coordinator", Role.COORDINATOR, False, False),
    ("service", Role.CUSTOMER_SERVICE, False, False),
    ("opsadmin", Role.OPS_ADMIN, True, False),
    ("admin", None, True, True),
]

# The lifecycle state each demo order is driven to, in turn.
TARGET_STATES = [
    OrderStatus.RECEIVED,
    OrderStatus.READY,
    OrderStatus.ON_HOLD,
    OrderStatus.ALLOCATED,
    OrderStatus.AWAITING_APPROVAL,
    OrderStatus.BACKORDERED,
    OrderStatus.RELEASED,
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.CANCELLED,
]
ORDERS_PER_STATE = 4


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return [{k: ("" if v == "NULL" else v) for k, v in row.items()} for row in csv.DictReader(handle)]


def sku_code(product_id: str | int) -> str:
    return f"NW-{int(product_id):03d}"


def seed_users() -> list[str]:
    user_model = get_user_model()
    names = []
    for username, role, is_staff, is_superuser in USERS:
        user, _ = user_model.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.is_staff, user.is_superuser = is_staff, is_superuser
        user.set_password(settings.DEMO_PASSWORD)
        user.save()
        if role:
            user.groups.add(Group.objects.get(name=role))
        names.append(username)
    return names


def seed_locations() -> dict[str, Location]:
    for spec in LOCATIONS:
        Location.objects.get_or_create(
            code=spec.code,
            defaults={
                "name": spec.name,
                "kind": spec.kind,
                "country": spec.country,
                "region": spec.region,
                "ships_to": spec.ships_to,
            },
        )
    return {loc.code: loc for loc in Location.objects.filter(code__in=[s.code for s in LOCATIONS])}


def _case_pack(quantity_per_unit: str) -> int:
    match = re.match(r"\s*(\d+)", quantity_per_unit)
    return max(1, int(match.group(1))) if match else 1


def seed_skus_and_stock(locations: dict[str, Location]) -> int:
    products = _rows("products.csv")
    for product in products:
        Sku.objects.get_or_create(
            code=sku_code(product["productID"]),
            defaults={
                "name": product["productName"],
                "unit_price": Decimal(product["unitPrice"]),
                "case_pack": _case_pack(product["quantityPerUnit"]),
                "active": product["discontinued"] != "1",
            },
        )
    skus = {sku.code: sku for sku in Sku.objects.filter(code__startswith="NW-")}
    existing = set(StockLevel.objects.values_list("location_id", "sku_id"))
    for index, spec in enumerate(LOCATIONS):
        location = locations[spec.code]
        for product in products:
            sku = skus[sku_code(product["productID"])]
            if (location.pk, sku.pk) in existing:
                continue
            # Spread stock unevenly so some orders fit one site, some need a split and some cannot be filled.
            units = int(int(product["unitsInStock"]) * spec.stock_share) if (int(product["productID"]) + index) % 4 else 0
            if units:
                stock_receive(
                    location_id=location.pk,
                    sku_id=sku.pk,
                    quantity=units,
                    actor=SEED,
                    reference="seed_demo",
                    reason="opening stock",
                )
    return len(skus)


ROUTING_RULES = [
    # name, priority, conditions, ranked location codes, outcome
    (
        "Same day ships in one parcel",
        1,
        {"service_levels": ["same_day"]},
        ["WH-EAST", "WH-EU"],
        {"allow_split": False, "max_shipments": 1},
    ),
    (
        "UK and Ireland from the London store first",
        5,
        {"destination_countries": ["GB", "IE"]},
        ["STORE-LON", "WH-EU"],
        {"max_shipments": 2},
    ),
    (
        "Europe from the EU hub; splits need approval",
        10,
        {"destination_countries": EUROPE},
        ["WH-EU", "STORE-LON"],
        {"max_shipments": 2, "split_requires_approval": True},
    ),
    ("Americas from the US DCs", 20, {"destination_countries": AMERICAS}, ["WH-EAST", "WH-WEST", "3PL-BR"], {"max_shipments": 2}),
]


def seed_routing_rules(locations: dict[str, Location]) -> int:
    for name, priority, conditions, ranked, outcome in ROUTING_RULES:
        rule, created = RoutingRule.objects.get_or_create(name=name, defaults={"priority": priority, **conditions, **outcome})
        if created:
            for rank, code in enumerate(ranked, start=1):
                rule.ranked_locations.create(location=locations[code], rank=rank)
    return RoutingRule.objects.count()


def seed_partners() -> dict[str, tuple[Partner, str]]:
    result = {}
    for code, name, kind in PARTNERS:
        partner, token, _ = partner_services.partner_ensure(code=code, name=name, kind=kind)
        result[code] = (partner, token)
    return result


def _availability(sku_ids: list[int]) -> dict[tuple[int, int], int]:
    return {(level.location_id, level.sku_id): level.available for level in StockLevel.objects.filter(sku_id__in=sku_ids)}


def _plan_sites(lines: list[tuple[int, int]], country: str, sites: list[Location]) -> tuple[int | None, list[int] | None]:
    """For (sku_id, quantity) lines: a site that fills them all, and a per-line site split over 2+ sites."""
    available = _availability([sku_id for sku_id, _ in lines])
    shipping = [site for site in sites if site.ships_to_country(country)]
    single = next((site.pk for site in shipping if all(available.get((site.pk, sku), 0) >= qty for sku, qty in lines)), None)
    split = []
    for sku, qty in lines:
        site = next((site.pk for site in shipping if available.get((site.pk, sku), 0) >= qty), None)
        if site is None:
            return single, None
        split.append(site)
    return single, split if len(set(split)) > 1 else None


def _reachable(target: str, resolvable: bool, single: int | None, split: list[int] | None) -> bool:
    if target in (OrderStatus.RECEIVED, OrderStatus.CANCELLED):
        return True
    if target in (OrderStatus.AWAITING_APPROVAL, OrderStatus.PARTIALLY_SHIPPED):
        return resolvable and split is not None
    if target in (OrderStatus.READY, OrderStatus.ON_HOLD, OrderStatus.BACKORDERED):
        return resolvable
    return resolvable and single is not None


def _drive(order: Order, target: str, single: int | None, split: list[int] | None) -> None:
    """Walk a received order along the lifecycle to `target` (already known to be reachable)."""
    if target == OrderStatus.RECEIVED:
        return
    if target == OrderStatus.CANCELLED:
        lifecycle_services.order_cancel(order=order, reason="Customer changed their mind", actor=SEED)
        return
    order = lifecycle_services.order_mark_ready(order=order, actor=SEED)
    if target == OrderStatus.READY:
        return
    if target == OrderStatus.ON_HOLD:
        lifecycle_services.order_hold(order=order, reason="Payment review", actor=SEED)
        return
    if target == OrderStatus.BACKORDERED:
        lifecycle_services.order_backorder(order=order, actor=SEED, short={"reason": "waiting for the next receipt"})
        return
    lines = list(order.lines.order_by("line_number"))
    if target in (OrderStatus.AWAITING_APPROVAL, OrderStatus.PARTIALLY_SHIPPED):
        by_site: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for line, site in zip(lines, split, strict=True):
            by_site[site].append((line.pk, line.quantity_open))
        plan = [reservation_services.PlannedShipment(site, tuple(site_lines)) for site, site_lines in by_site.items()]
    else:
        plan = [reservation_services.PlannedShipment(single, tuple((line.pk, line.quantity_open) for line in lines))]
    order = allocation_services.order_allocate(
        order=order, plan=plan, actor=SEED, requires_approval=target == OrderStatus.AWAITING_APPROVAL
    )
    if target in (OrderStatus.ALLOCATED, OrderStatus.AWAITING_APPROVAL):
        return
    order = lifecycle_services.order_release(order=order, actor=SEED)
    if target == OrderStatus.RELEASED:
        return
    shipments = list(Shipment.objects.filter(order=order).order_by("pk"))
    to_ship = shipments[:1] if target == OrderStatus.PARTIALLY_SHIPPED else shipments
    for number, shipment in enumerate(to_ship, start=1):
        shipment_services.shipment_pick(shipment=shipment, actor=SEED)
        shipment_services.shipment_pack(shipment=shipment, actor=SEED)
        shipment_services.shipment_ship(
            shipment=shipment, carrier="UPS", tracking_number=f"1Z{order.pk:06d}{number:02d}", actor=SEED
        )
        if target == OrderStatus.DELIVERED:
            shipment_services.shipment_deliver(shipment=shipment, actor=SEED)


def seed_orders(partners: dict[str, tuple[Partner, str]], locations: dict[str, Location]) -> Counter:
    """Orders in every lifecycle state, from the newest Northwind orders (once; later runs add none)."""
    partner_list = [p for p, _ in partners.values()]
    if Order.objects.filter(partner__in=partner_list, external_id__startswith="NW-").exists():
        return Counter(Order.objects.values_list("status", flat=True))
    customers = {c["customerID"]: c for c in _rows("customers.csv")}
    details: dict[str, list[dict]] = defaultdict(list)
    for row in _rows("order_details.csv"):
        details[row["orderID"]].append(row)
    skus = {sku.code: sku for sku in Sku.objects.filter(code__startswith="NW-")}
    sites = list(locations.values())
    seeded: Counter = Counter()
    # Northwind dates are from 1996-98; shift them so the demo reads as the last few weeks.
    shift = datetime.now(UTC).replace(microsecond=0) - datetime(1998, 5, 6, tzinfo=UTC)
    for index, row in enumerate(reversed(_rows("orders.csv"))):
        if all(seeded[t] >= ORDERS_PER_STATE for t in TARGET_STATES):
            break
        country = COUNTRY_CODES.get(row["shipCountry"], "")
        lines = details[row["orderID"]]
        line_skus = [skus.get(sku_code(d["productID"])) for d in lines]
        resolvable = all(sku is not None and sku.active for sku in line_skus)
        single, split = _plan_sites(
            [(sku.pk, int(d["quantity"])) for sku, d in zip(line_skus, lines, strict=True) if sku], country, sites
        )
        target = next(
            (t for t in TARGET_STATES if seeded[t] < ORDERS_PER_STATE and _reachable(t, resolvable, single, split)), None
        )
        if target is None:
            continue
        partner = partner_list[index % len(partner_list)]
        customer = customers.get(row["customerID"], {})
        with transaction.atomic():
            order = intake_services.order_create(
                partner=partner,
                external_id=f"NW-{row['orderID']}",
                placed_at=datetime.fromisoformat(row["orderDate"]).replace(tzinfo=UTC) + shift,
                customer_name=customer.get("contactName") or row["shipName"],
                customer_email=f"{row['customerID'].lower()}@example.com",
                customer_tier=["standard", "standard", "priority", "strategic"][index % 4],
                service_level=["standard", "standard", "express", "same_day"][index % 4],
                address=Address(
                    name=row["shipName"],
                    line1=row["shipAddress"],
                    city=row["shipCity"],
                    region=row["shipRegion"],
                    postal_code=row["shipPostalCode"],
                    country=country,
                ),
                lines=[
                    intake_services.LineInput(sku_code(d["productID"]), int(d["quantity"]), "each", Decimal(d["unitPrice"]))
                    for d in lines
                ],
                actor=Actor.for_partner(partner.code),
            )
            _drive(order, target, single, split)
        seeded[target] += 1
    return Counter(Order.objects.values_list("status", flat=True))


QUEUE_MEMBERS = {
    "coordinator": ["intake", "stock", "warehouse", "shipping"],
    "service": ["customer-service"],
    "opsadmin": ["finance", "integrations", "escalations", "triage"],
}

# (order status, exception code, summary, share of its SLA already used when the demo starts). The shares
# spread the badges: fresh (ok), most of the clock gone (warning), past due (escalated by the first sweep).
ORDER_EXCEPTIONS = [
    (OrderStatus.RECEIVED, "invalid_address", "Postal code does not match the country's format", 0.05),
    (OrderStatus.RECEIVED, "unknown_sku", "Line 2 names a SKU the catalogue does not know", 0.85),
    (OrderStatus.RECEIVED, "pricing_mismatch", "Unit price 20% below the catalogue price", 0.3),
    (OrderStatus.ON_HOLD, "duplicate_order", "Same customer, address and lines as an order 2 hours earlier", 1.2),
    (OrderStatus.ON_HOLD, "credit_hold", "Payment provider flagged the card", 0.8),
    (OrderStatus.ON_HOLD, "invalid_address", "Street address is missing", 0.4),
    (OrderStatus.BACKORDERED, "out_of_stock", "Not enough stock at any location that ships to the destination", 0.1),
    (OrderStatus.BACKORDERED, "out_of_stock", "Two lines short everywhere", 0.9),
    (OrderStatus.BACKORDERED, "out_of_stock", "Short by 12 units", 0.02),
    (OrderStatus.AWAITING_APPROVAL, "split_approval_required", "Proposed split over two warehouses", 0.2),
    (OrderStatus.AWAITING_APPROVAL, "split_approval_required", "Proposed split over two warehouses", 1.5),
    (OrderStatus.RELEASED, "short_pick", "Picker found 3 of 5 units", 0.78),
    (OrderStatus.RELEASED, "label_failure", "Carrier rejected the label: postal code unknown", 0.6),
    (OrderStatus.RELEASED, "address_change_after_release", "Customer changed the street after release", 0.1),
    (OrderStatus.PARTIALLY_SHIPPED, "damaged_item", "One carton crushed at packing", 0.95),
    (OrderStatus.SHIPPED, "delivery_failed", "Carrier: recipient not available, parcel returned", 0.5),
    (OrderStatus.SHIPPED, "shipment_not_invoiced", "Shipped two days ago, no invoice in the ERP", 0.7),
    (OrderStatus.DELIVERED, "shipment_not_invoiced", "Delivered, no invoice in the ERP", 0.3),
    (OrderStatus.ALLOCATED, "carrier_service_invalid", "Express service not offered to this postal code", 0.88),
]

SITE_EXCEPTIONS = [
    ("inventory_drift", "WMS counts 8 fewer units than the portal", 0.3),
    ("stock_discrepancy", "Cycle count found 4 extra units", 0.82),
    ("sync_failure", "ERP rejected the shipment confirmation (HTTP 500) after 5 attempts", 1.1),
]


def _sla_share(code: str, order: Order | None, share: float) -> timedelta:
    """How long ago to date an exception so that `share` of its resolve time has passed (wall-clock)."""
    exception_type = ExceptionType.objects.get(code=code)
    priority = exception_priority(
        severity=exception_type.severity,
        customer_tier=order.customer_tier if order else "standard",
        service_level=order.service_level if order else "standard",
        order_value=order.total_amount if order else 0,
    )
    policy = SlaPolicy.objects.filter(exception_type=exception_type, priority=priority).first()
    minutes = policy.resolve_minutes if policy else FALLBACK_SLA_MINUTES[priority][1]
    return timedelta(minutes=minutes * share)


def seed_exceptions(locations: dict[str, Location]) -> int:
    """Open exceptions of many types across the queues, some near and some past their SLA (once)."""
    user_model = get_user_model()
    for username, slugs in QUEUE_MEMBERS.items():
        user = user_model.objects.get(username=username)
        for queue in Queue.objects.filter(slug__in=slugs):
            queue.members.add(user)
    if FulfillmentException.objects.filter(source_system="seed_demo").exists():
        return FulfillmentException.objects.count()
    now = datetime.now(UTC)
    used: set[int] = set()
    for status, code, summary, used_share in ORDER_EXCEPTIONS:
        order = Order.objects.filter(status=status).exclude(pk__in=used).order_by("pk").first()
        if order is None:
            continue
        used.add(order.pk)
        line = order.lines.order_by("line_number").first() if code in ("unknown_sku", "short_pick", "damaged_item") else None
        shipment = (
            order.shipments.order_by("pk").first()
            if code in ("short_pick", "label_failure", "damaged_item", "delivery_failed", "shipment_not_invoiced")
            else None
        )
        exception_raise(
            code=code,
            summary=summary,
            order=order,
            line=line,
            shipment=shipment,
            actor=SEED,
            source_system="seed_demo",
            detected_at=now - _sla_share(code, order, used_share),
        )
    # Every proposed split and every backorder carries its exception, as the allocation engine leaves them.
    for code, status, summary in (
        ("split_approval_required", OrderStatus.AWAITING_APPROVAL, "Proposed split over two warehouses"),
        ("out_of_stock", OrderStatus.BACKORDERED, "Not enough stock at any location that ships to the destination"),
    ):
        for order in Order.objects.filter(status=status).exclude(exceptions__type__code=code):
            exception_raise(
                code=code,
                summary=summary,
                order=order,
                actor=SEED,
                source_system="seed_demo",
                detected_at=now - _sla_share(code, order, 0.15),
            )
    skus = list(Sku.objects.filter(code__startswith="NW-").order_by("code")[:3])
    for (code, summary, used_share), sku, site in zip(SITE_EXCEPTIONS, skus, locations.values(), strict=False):
        exception_raise(
            code=code,
            summary=summary,
            location=site,
            sku=sku,
            actor=SEED,
            source_system="seed_demo",
            detected_at=now - _sla_share(code, None, used_share),
        )
    sla_sweep()
    return FulfillmentException.objects.count()


def seed_demo() -> dict:
    """Create (or complete) the demo data; return what exists afterwards."""
    users = seed_users()
    locations = seed_locations()
    sku_count = seed_skus_and_stock(locations)
    seed_routing_rules(locations)
    partners = seed_partners()
    seed_orders(partners, locations)
    exceptions = seed_exceptions(locations)
    statuses = Counter(Order.objects.values_list("status", flat=True))
    return {
        "users": users,
        "locations": sorted(locations),
        "skus": sku_count,
        "partners": {code: token for code, (_, token) in partners.items()},
        "orders_by_status": dict(sorted(statuses.items())),
        "exceptions": exceptions,
    }
