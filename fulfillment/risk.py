"""Orders at risk: open orders whose features have lately led other orders into an exception.

A candidate is an order allocated or released with no shipment shipped yet. Its features are each SKU on
its lines, each location it ships from, its partner, its destination region (country and the first two
characters of the postal code), the region with each location, its service level and its customer tier.
For a feature value and an exception type, the rate is: of the orders placed in the last 30 days having
that value, the share that had an exception of that type. The order being scored is left out of its own
figures, so what it says is what other orders did. A value needs MIN_SUPPORT such orders before it can
flag anything, so one bad order does not flag a whole region.

An order's score is its highest rate; the feature, the type and the counts behind it are its reason,
checkable by hand. One query scores and ranks every candidate in the database (CTEs, GROUP BY and a
window); one more loads the orders shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from exceptions.models import ExceptionType, FulfillmentException
from inventory.models import Location, Sku
from orders.models import Order, OrderLine, OrderStatus, Partner, Shipment, ShipmentStatus

WINDOW_DAYS = 30
MIN_SUPPORT = 5
TOP = 50
AT_RISK_STATUSES = (OrderStatus.ALLOCATED, OrderStatus.RELEASED)

# How a type reads after "had": the names that are not nouns, reworded; the rest take "a" or "an".
TYPE_PHRASES = {
    "uom_mismatch": "a unit of measure mismatch",
    "pricing_mismatch": "a price mismatch",
    "out_of_stock": "a stock-out",
    "split_approval_required": "a split needing approval",
    "address_change_after_release": "an address change after release",
    "carrier_service_invalid": "an invalid carrier service",
    "delivery_failed": "a failed delivery",
    "shipment_not_invoiced": "a shipment left uninvoiced",
}


@dataclass(frozen=True)
class Risk:
    order: Order
    kind: str  # sku, location, partner, region, region_location, service_level, customer_tier
    value: str  # as stored by the query: codes; a region is "US 87"; a region with a location "US 87|WH-WEST"
    exception_type: ExceptionType
    failed: int  # other orders with this value that had an exception of this type
    orders: int  # other orders with this value

    @property
    def score(self) -> float:
        return self.failed / self.orders

    @property
    def percent(self) -> int:
        return round(100 * self.score)

    @property
    def feature(self) -> str:
        """The feature in words: "orders to US 87xxx from WH-WEST"."""
        return feature_phrase(self.kind, self.value)

    @property
    def reason(self) -> str:
        return (
            f"{self.feature} had {type_phrase(self.exception_type)} {self.failed} times in {self.orders} "
            f"in the last {WINDOW_DAYS} days"
        )


def type_phrase(exception_type: ExceptionType) -> str:
    if exception_type.code in TYPE_PHRASES:
        return TYPE_PHRASES[exception_type.code]
    name = exception_type.name
    # "Unknown SKU" reads "an unknown SKU"; a name that starts with an acronym keeps its capitals.
    name = name if name[1:2].isupper() else name[:1].lower() + name[1:]
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _region(value: str) -> str:
    country, _, prefix = value.partition(" ")
    return f"{country} {prefix}xxx"


def feature_phrase(kind: str, value: str) -> str:
    if kind == "location":
        return f"orders from {value}"
    if kind == "region":
        return f"orders to {_region(value)}"
    if kind == "region_location":
        region, _, location = value.partition("|")
        return f"orders to {_region(region)} from {location}"
    if kind == "sku":
        return f"orders with SKU {value}"
    if kind == "partner":
        return f"orders from partner {value}"
    if kind == "service_level":
        return f"{value.replace('_', '-')} orders"
    if kind == "customer_tier":
        return f"orders of {value} customers"
    return f"orders with {kind} {value}"


# Among equal rates on equal evidence (often the same orders seen two ways), the first kind here explains it.
KIND_ORDER = ("location", "region_location", "sku", "partner", "region", "service_level", "customer_tier")


def _sql_parts() -> dict[str, str]:
    return {
        "kind_order": " ".join(f"WHEN '{kind}' THEN {position}" for position, kind in enumerate(KIND_ORDER)),
        "order": Order._meta.db_table,
        "line": OrderLine._meta.db_table,
        "shipment": Shipment._meta.db_table,
        "partner": Partner._meta.db_table,
        "sku": Sku._meta.db_table,
        "location": Location._meta.db_table,
        "exception": FulfillmentException._meta.db_table,
    }


# `feature` holds (order, kind, value, is_current) for the window's orders and the candidates. `is_current` is 0 for
# a location the order no longer ships from (a cancelled shipment): it still counts as what happened to a past
# order, but a candidate is judged by where it ships from now. `failed` holds each (order, type) once.
RISK_SQL = """
WITH candidate AS (
    SELECT o.id FROM {order} o
    WHERE o.status IN (%(allocated)s, %(released)s)
      AND NOT EXISTS (
          SELECT 1 FROM {shipment} s WHERE s.order_id = o.id AND s.status IN (%(shipped)s, %(delivered)s)
      )
),
scope AS (
    SELECT o.id, CASE WHEN o.placed_at >= %(since)s THEN 1 ELSE 0 END AS in_window,
           o.partner_id, o.service_level, o.customer_tier,
           CASE WHEN o.ship_postal_code <> '' THEN o.ship_country || ' ' || SUBSTR(o.ship_postal_code, 1, 2) END
               AS region
    FROM {order} o
    WHERE o.placed_at >= %(since)s OR o.id IN (SELECT id FROM candidate)
),
site AS (
    SELECT s.order_id, l.code, MAX(CASE WHEN s.status <> %(cancelled)s THEN 1 ELSE 0 END) AS is_current
    FROM {shipment} s JOIN {location} l ON l.id = s.location_id
    WHERE s.order_id IN (SELECT id FROM scope)
    GROUP BY s.order_id, l.code
),
feature AS (
    SELECT sc.id AS order_id, 'partner' AS kind, p.code AS value, 1 AS is_current
    FROM scope sc JOIN {partner} p ON p.id = sc.partner_id
    UNION ALL
    SELECT sc.id, 'service_level', sc.service_level, 1 FROM scope sc
    UNION ALL
    SELECT sc.id, 'customer_tier', sc.customer_tier, 1 FROM scope sc
    UNION ALL
    SELECT sc.id, 'region', sc.region, 1 FROM scope sc WHERE sc.region IS NOT NULL
    UNION ALL
    SELECT DISTINCT l.order_id, 'sku', k.code, 1
    FROM {line} l JOIN {sku} k ON k.id = l.sku_id JOIN scope sc ON sc.id = l.order_id
    UNION ALL
    SELECT site.order_id, 'location', site.code, site.is_current FROM site
    UNION ALL
    SELECT site.order_id, 'region_location', sc.region || '|' || site.code, site.is_current
    FROM site JOIN scope sc ON sc.id = site.order_id WHERE sc.region IS NOT NULL
),
failed AS (
    SELECT DISTINCT e.order_id, e.type_id FROM {exception} e JOIN scope sc ON sc.id = e.order_id
),
support AS (
    SELECT f.kind, f.value, COUNT(*) AS orders
    FROM feature f JOIN scope sc ON sc.id = f.order_id AND sc.in_window = 1
    GROUP BY f.kind, f.value
),
hit AS (
    SELECT f.kind, f.value, x.type_id, COUNT(*) AS orders
    FROM feature f JOIN scope sc ON sc.id = f.order_id AND sc.in_window = 1 JOIN failed x ON x.order_id = f.order_id
    GROUP BY f.kind, f.value, x.type_id
),
evidence AS (
    SELECT c.id AS order_id, f.kind, f.value, h.type_id,
           h.orders - CASE WHEN sc.in_window = 1 AND own.order_id IS NOT NULL THEN 1 ELSE 0 END AS failed_orders,
           n.orders - sc.in_window AS support_orders
    FROM candidate c
    JOIN scope sc ON sc.id = c.id
    JOIN feature f ON f.order_id = c.id AND f.is_current = 1
    JOIN support n ON n.kind = f.kind AND n.value = f.value
    JOIN hit h ON h.kind = f.kind AND h.value = f.value
    LEFT JOIN failed own ON own.order_id = c.id AND own.type_id = h.type_id
),
ranked AS (
    SELECT e.*, ROW_NUMBER() OVER (
        PARTITION BY e.order_id
        ORDER BY 1.0 * e.failed_orders / e.support_orders DESC, e.support_orders DESC,
                 CASE e.kind {kind_order} END, e.value, e.type_id
    ) AS pick
    FROM evidence e
    WHERE e.support_orders >= %(min_support)s AND e.failed_orders > 0
)
SELECT r.order_id, r.kind, r.value, r.type_id, r.failed_orders, r.support_orders
FROM ranked r JOIN {order} o ON o.id = r.order_id
WHERE r.pick = 1
ORDER BY 1.0 * r.failed_orders / r.support_orders DESC, r.support_orders DESC, o.placed_at, o.id
LIMIT %(top)s
"""


def orders_at_risk(*, top: int = TOP, min_support: int = MIN_SUPPORT, now: dt.datetime | None = None) -> list[Risk]:
    """The `top` candidates with the highest score, highest first (more evidence first among equal rates)."""
    if min_support < 1:
        raise ValueError("min_support must be at least 1: a rate needs orders to be a rate of.")
    since = (now or timezone.now()) - dt.timedelta(days=WINDOW_DAYS)
    params = {
        "allocated": OrderStatus.ALLOCATED.value,
        "released": OrderStatus.RELEASED.value,
        "shipped": ShipmentStatus.SHIPPED.value,
        "delivered": ShipmentStatus.DELIVERED.value,
        "cancelled": ShipmentStatus.CANCELLED.value,
        "since": connection.ops.adapt_datetimefield_value(since),
        "min_support": min_support,
        "top": top,
    }
    with connection.cursor() as cursor:
        cursor.execute(RISK_SQL.format(**_sql_parts()), params)
        rows = cursor.fetchall()
    if not rows:
        return []
    orders = Order.objects.select_related("partner").in_bulk([row[0] for row in rows])
    types = ExceptionType.objects.in_bulk({row[3] for row in rows})
    return [
        Risk(order=orders[order_id], kind=kind, value=value, exception_type=types[type_id], failed=failed, orders=support)
        for order_id, kind, value, type_id, failed, support in rows
    ]
