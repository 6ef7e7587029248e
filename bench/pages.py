"""Pages benchmark: how the latency and the queries of the portal's pages, the admin's lists and the partner API's
lists move with the history behind them.

Run from the project root against a PostgreSQL server (the one `scripts/test-services.sh start` prints):

    DATABASE_URL=postgres://... .venv/bin/python bench/pages.py                  # 100, 10,000 and 100,000 exceptions
    .venv/bin/python bench/pages.py --small                                       # 100 and 10,000
    .venv/bin/python bench/pages.py --sizes 100,50000 --requests 50 --explain
    .venv/bin/python bench/pages.py --sizes 100,100000 --pages admin             # only the admin's lists

Each size is a fresh copy (CREATE DATABASE ... TEMPLATE) of a scratch database migrated once (bench_pages_<pid>), loaded
with set-based SQL (INSERT ... SELECT ... FROM generate_series) and VACUUM ANALYZE; all are dropped at the end, also on
error, Ctrl-C and SIGTERM. The database DATABASE_URL names is never touched.

What a size holds: one order per exception, from one partner, placed over the last HISTORY_DAYS days, with 2 lines,
a shipment (with its lines) and EVENTS_PER_ORDER order events; the exception on it (70 % open, spread over the 18
seeded types and so over their queues, priorities P1-P4, LOCATION_COUNT locations and OWNER_COUNT owners, a third of
the open ones unowned) with one or two exception events. An order whose exception is an open split approval waits
for approval with two planned shipments. Stock does not grow with history: LOCATION_COUNT x SKU_COUNT levels at
every size.

Each page is requested in process with django.test.Client: WARMUPS times, the last of them counting its queries with
CaptureQueriesContext, then --requests times timed with time.perf_counter (median and p95). The coordinator works the
coordinators' four queues; the admin lists are an ops admin's; the API lists a partner's, by token. The connection
stays open across requests (the test client does not close it), so the figures leave out connecting.

--explain prints EXPLAIN (ANALYZE, BUFFERS) of the slowest statements of the pages whose p95 grew the most, at the
largest size.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.scratch import (
    LOOPBACK_ENVIRONMENT,
    ScratchServer,
    close_django_connections,
    exit_on_sigterm,
    insert_select,
    migrate_quietly,
    point_django_at,
    quoted,
    require_postgres,
    setup_django_on,
    url_for_database,
)

SIZES = (100, 10_000, 100_000)
SMALL_SIZES = (100, 10_000)
REQUESTS = 30
WARMUPS = 3
HISTORY_DAYS = 90
LINES_PER_ORDER = 2
EVENTS_PER_ORDER = 5
LOCATION_COUNT = 10
SKU_COUNT = 1_000
OWNER_COUNT = 20
OPEN_SHARE = 0.70
COORDINATOR_QUEUES = ("intake", "stock", "warehouse", "shipping")
FILTER_TYPE = "out_of_stock"
FILTER_LOCATION = "LOC-03"
# A word of one type's name, and so of the summaries of that type's exceptions ("Damaged item on B-0000042").
SUMMARY_WORD = "damaged"
# Page size of the queue (exceptions.views.PAGE_SIZE); the last page is asked for by number.
QUEUE_PAGE_SIZE = 25
# A page whose p95 grows past this many times its p95 at the smallest size gets its statements explained.
EXPLAIN_RATIO = 3.0

progress_console = Console(stderr=True)


# --- loading ---------------------------------------------------------------------------------------


@dataclass
class People:
    coordinator: object
    ops_admin: object
    token: str


def make_people() -> People:
    """The people who ask for the pages, as tests.factories.user_with_role makes them, and the partner with its token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.roles import Role
    from exceptions.models import Queue
    from orders.services.partners import partner_ensure

    user_model = get_user_model()
    coordinators = Group.objects.get(name=Role.COORDINATOR)
    queues = list(Queue.objects.filter(slug__in=COORDINATOR_QUEUES))
    coordinator = user_model.objects.create_user("bench-coordinator")
    owners = [coordinator] + [user_model.objects.create_user(f"owner-{n:02d}") for n in range(2, OWNER_COUNT + 1)]
    for owner in owners:
        owner.groups.add(coordinators)
        for queue in queues:
            queue.members.add(owner)
    ops_admin = user_model.objects.create_user("bench-ops", is_staff=True)
    ops_admin.groups.add(Group.objects.get(name=Role.OPS_ADMIN))
    for queue in Queue.objects.filter(slug="escalations"):
        queue.members.add(ops_admin)
    _, token, _ = partner_ensure(code="bench", name="Bench storefront")
    return People(coordinator, ops_admin, token)


POLLED_CHANGES = 20


def load(exceptions: int) -> People:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from exceptions.models import ExceptionEvent, ExceptionType, FulfillmentException, SlaPolicy
    from inventory.models import Location, Sku, StockLevel
    from orders.models import Order, OrderEvent, OrderLine, OrderStatus, Partner, Shipment, ShipmentLine, ShipmentStatus

    orders, lines, shipments = quoted(Order), quoted(OrderLine), quoted(Shipment)
    locations, skus, types = quoted(Location), quoted(Sku), quoted(ExceptionType)
    fulfillment_exceptions = quoted(FulfillmentException)
    open_statuses = "('open', 'in_progress', 'waiting')"
    history = f"interval '{HISTORY_DAYS} days'"

    def seed(cursor):
        # Every size gets the same spread, so the figures differ by the number of rows alone.
        cursor.execute("SELECT setseed(0.42)")

    def sites(cursor):
        insert_select(
            cursor,
            Location,
            {
                "code": "'LOC-' || lpad(CAST(g AS text), 2, '0')",
                "name": "'Bench site ' || g",
                "country": "'US'",
                "ships_to": """'["US"]'::jsonb""",
            },
            f"generate_series(1, {LOCATION_COUNT}) g",
        )

    def products(cursor):
        insert_select(
            cursor,
            Sku,
            {"code": "'SKU-' || lpad(CAST(g AS text), 4, '0')", "name": "'Bench product ' || g", "unit_price": "12.50"},
            f"generate_series(1, {SKU_COUNT}) g",
        )

    def stock_levels(cursor):
        insert_select(
            cursor,
            StockLevel,
            {
                "location_id": "l.id",
                "sku_id": "s.id",
                "on_hand": "CAST(FLOOR(60 * random()) AS integer)",
                "reorder_point": "CAST(FLOOR(20 * random()) AS integer)",
                "lead_time_days": "5",
                "updated_at": "now()",
            },
            f"{locations} l CROSS JOIN {skus} s",
        )

    def order_rows(cursor):
        insert_select(
            cursor,
            Order,
            {
                "partner_id": f"(SELECT id FROM {quoted(Partner)} WHERE code = 'bench')",
                "external_id": "'B-' || lpad(CAST(pick.g AS text), 7, '0')",
                "status": f"""CASE WHEN pick.r < 0.5 THEN '{OrderStatus.SHIPPED}' WHEN pick.r < 0.7 THEN '{OrderStatus.ALLOCATED}'
                                   WHEN pick.r < 0.85 THEN '{OrderStatus.ON_HOLD}' ELSE '{OrderStatus.BACKORDERED}' END""",
                "priority": "(ARRAY['P1', 'P2', 'P3', 'P4'])[1 + mod(pick.g, 4)]",
                "customer_name": "'Customer ' || pick.g",
                "customer_email": "'customer' || pick.g || '@example.com'",
                "ship_name": "'Customer ' || pick.g",
                "ship_line1": "pick.g || ' Main Street'",
                "ship_city": "'Springfield'",
                "ship_postal_code": "lpad(CAST(mod(pick.g, 99999) AS text), 5, '0')",
                "ship_country": "'US'",
                "total_amount": "25.00",
                "placed_at": "pick.at",
                "created_at": "pick.at",
                "updated_at": "LEAST(now(), pick.at + random() * interval '3 days')",
                "changed_at": "pick.at",  # then what followed (change_marks)
            },
            f"(SELECT g, random() AS r, now() - random() * {history} AS at FROM generate_series(1, {exceptions}) g) pick",
        )

    def order_lines(cursor):
        insert_select(
            cursor,
            OrderLine,
            {
                "order_id": "pick.id",
                "line_number": "pick.n",
                "sku_code": "s.code",
                "sku_id": "s.id",
                "quantity": "pick.q",
                "base_quantity": "pick.q",
                "unit_price": "12.50",
            },
            f"""(SELECT o.id, n, 1 + CAST(FLOOR(random() * {SKU_COUNT}) AS integer) AS k,
                        1 + CAST(FLOOR(random() * 4) AS integer) AS q
                 FROM {orders} o CROSS JOIN generate_series(1, {LINES_PER_ORDER}) n) pick
                JOIN {skus} s ON s.code = 'SKU-' || lpad(CAST(pick.k AS text), 4, '0')""",
        )

    def shipment_rows(cursor):
        insert_select(
            cursor,
            Shipment,
            {
                "order_id": "pick.id",
                "location_id": f"pick.sites[1 + CAST(FLOOR(random() * {LOCATION_COUNT}) AS integer)]",
                "status": f"""CASE WHEN pick.status = '{OrderStatus.SHIPPED}' THEN '{ShipmentStatus.SHIPPED}'
                                   WHEN pick.status = '{OrderStatus.ALLOCATED}' THEN '{ShipmentStatus.RELEASED}'
                                   ELSE '{ShipmentStatus.PLANNED}' END""",
                "carrier": "'ups'",
                "created_at": "pick.placed_at",
                "updated_at": "pick.placed_at",
                "shipped_at": f"CASE WHEN pick.status = '{OrderStatus.SHIPPED}' THEN pick.placed_at + interval '1 day' END",
            },
            f"""(SELECT o.id, o.status, o.placed_at, ids.sites
                 FROM {orders} o CROSS JOIN (SELECT array_agg(id ORDER BY id) AS sites FROM {locations}) ids) pick""",
        )

    def shipment_lines(cursor):
        insert_select(
            cursor,
            ShipmentLine,
            {"shipment_id": "sh.id", "order_line_id": "ol.id", "quantity": "ol.base_quantity"},
            f"{shipments} sh JOIN {lines} ol ON ol.order_id = sh.order_id",
        )

    def order_events(cursor):
        insert_select(
            cursor,
            OrderEvent,
            {
                "order_id": "o.id",
                "shipment_id": "CASE WHEN k = 4 THEN sh.id END",
                "kind": "(ARRAY['created', 'transition', 'transition', 'shipment', 'note'])[k]",
                "name": "(ARRAY['created', 'mark_ready', 'allocate', 'release', 'note'])[k]",
                "from_status": "(ARRAY['', 'received', 'ready', 'planned', ''])[k]",
                "to_status": "(ARRAY['', 'ready', 'allocated', 'released', ''])[k]",
                "actor": "'system:bench'",
                "at": "LEAST(now(), o.placed_at + (k - 1) * random() * interval '12 hours')",
            },
            f"{orders} o JOIN {shipments} sh ON sh.order_id = o.id CROSS JOIN generate_series(1, {EVENTS_PER_ORDER}) k",
        )

    def exception_rows(cursor):
        user_table = quoted(get_user_model())
        # One exception per order; the order's number picks its type, location and owner, random() its priority and
        # status, so that every tab, filter and queue gets its share.
        source = f"""(
            SELECT base.*, t.default_queue_id, t.name AS type_name, sp.id AS policy_id,
                   COALESCE(sp.first_response_minutes, 120) AS respond, COALESCE(sp.resolve_minutes, 1440) AS resolve,
                   COALESCE(sp.warning_percent, 75) AS warning,
                   CASE WHEN base.r < 0.40 THEN 'open' WHEN base.r < 0.60 THEN 'in_progress'
                        WHEN base.r < {OPEN_SHARE} THEN 'waiting' WHEN base.r < 0.90 THEN 'resolved'
                        ELSE 'dismissed' END AS status
            FROM (
                SELECT o.id AS order_id, o.external_id, o.placed_at, o.g, sh.id AS shipment_id, ol.id AS line_id,
                       ol.sku_id, ids.types[1 + mod(o.g, cardinality(ids.types))] AS type_id,
                       (ARRAY['P1', 'P2', 'P3', 'P4'])[1 + CAST(FLOOR(random() * 4) AS integer)] AS priority,
                       random() AS r, random() AS r_owner, random() AS r_time, ids.sites, ids.owners
                FROM (SELECT id, external_id, placed_at, row_number() OVER (ORDER BY id) AS g FROM {orders}) o
                JOIN {shipments} sh ON sh.order_id = o.id
                JOIN {lines} ol ON ol.order_id = o.id AND ol.line_number = 1
                CROSS JOIN (
                    SELECT (SELECT array_agg(id ORDER BY id) FROM {types}) AS types,
                           (SELECT array_agg(id ORDER BY id) FROM {locations}) AS sites,
                           (SELECT array_agg(id ORDER BY id) FROM {user_table}
                            WHERE username = 'bench-coordinator' OR username LIKE 'owner-%%') AS owners
                ) ids
            ) base
            JOIN {types} t ON t.id = base.type_id
            LEFT JOIN {quoted(SlaPolicy)} sp ON sp.exception_type_id = t.id AND sp.priority = base.priority
        ) pick"""
        detected = "(pick.placed_at + pick.r_time * interval '6 hours')"
        closed = "pick.status IN ('resolved', 'dismissed')"
        insert_select(
            cursor,
            FulfillmentException,
            {
                "type_id": "pick.type_id",
                "order_id": "pick.order_id",
                "line_id": "CASE WHEN mod(pick.g, 3) = 0 THEN pick.line_id END",
                "shipment_id": "CASE WHEN mod(pick.g, 2) = 0 THEN pick.shipment_id END",
                "location_id": f"CASE WHEN mod(pick.g, 5) <> 0 THEN pick.sites[1 + mod(pick.g, {LOCATION_COUNT})] END",
                "sku_id": "CASE WHEN mod(pick.g, 3) = 0 THEN pick.sku_id END",
                "dedupe_key": "'order:' || pick.order_id || ':' || pick.g",
                "summary": "pick.type_name || ' on ' || pick.external_id",
                "status": "pick.status",
                "owner_id": (
                    "CASE WHEN pick.r_owner < 2.0 / 3 THEN pick.owners[1 + mod(pick.g * 7, cardinality(pick.owners))] END"
                ),
                "queue_id": "pick.default_queue_id",
                "priority": "pick.priority",
                "sla_policy_id": "pick.policy_id",
                "detected_at": detected,
                "first_response_due_at": f"{detected} + pick.respond * interval '1 minute'",
                "first_response_at": f"CASE WHEN pick.status <> 'open' THEN {detected} + interval '10 minutes' END",
                "warn_at": f"{detected} + pick.resolve * pick.warning / 100.0 * interval '1 minute'",
                "due_at": f"{detected} + pick.resolve * interval '1 minute'",
                "waiting_since": f"CASE WHEN pick.status = 'waiting' THEN {detected} + interval '1 hour' END",
                "resolved_at": f"CASE WHEN {closed} THEN {detected} + pick.r_time * interval '2 days' END",
                "resolution_action": (
                    f"CASE WHEN {closed} THEN (CASE pick.status WHEN 'dismissed' THEN 'dismiss' ELSE 'resolve' END) ELSE '' END"
                ),
                "resolution_note": f"CASE WHEN {closed} THEN 'Handled' ELSE '' END",
                "last_occurred_at": detected,
                "created_at": detected,
                "updated_at": f"CASE WHEN {closed} THEN {detected} + pick.r_time * interval '2 days' ELSE {detected} END",
            },
            source,
        )

    def exception_events(cursor):
        insert_select(
            cursor,
            ExceptionEvent,
            {
                "exception_id": "e.id",
                "kind": "'created'",
                "to_status": "'open'",
                "actor": "'system:bench'",
                "at": "e.detected_at",
            },
            f"{fulfillment_exceptions} e",
        )
        insert_select(
            cursor,
            ExceptionEvent,
            {
                "exception_id": "e.id",
                "kind": "'status_changed'",
                "action": "e.resolution_action",
                "from_status": "'open'",
                "to_status": "e.status",
                "actor": "'owner'",
                "note": "e.resolution_note",
                "at": "e.resolved_at",
            },
            f"{fulfillment_exceptions} e WHERE e.resolved_at IS NOT NULL",
        )

    def splits(cursor):
        waiting = f"""SELECT e.order_id FROM {fulfillment_exceptions} e JOIN {types} t ON t.id = e.type_id
                      WHERE t.code = 'split_approval_required' AND e.status IN {open_statuses}"""
        cursor.execute(f"UPDATE {orders} SET status = '{OrderStatus.AWAITING_APPROVAL}' WHERE id IN ({waiting})")
        cursor.execute(
            f"UPDATE {shipments} SET status = '{ShipmentStatus.PLANNED}', shipped_at = NULL WHERE order_id IN ({waiting})"
        )
        # The second shipment of the split, from the next site, with the order's second line.
        insert_select(
            cursor,
            Shipment,
            {
                "order_id": "sh.order_id",
                "location_id": f"(SELECT id FROM {locations} WHERE id <> sh.location_id ORDER BY id LIMIT 1)",
                "status": f"'{ShipmentStatus.PLANNED}'",
                "created_at": "sh.created_at",
                "updated_at": "sh.created_at",
            },
            f"{shipments} sh WHERE sh.order_id IN ({waiting})",
        )

    people: People | None = None

    def change_marks(cursor):
        # What the triggers would have stamped had the history happened: the latest change of the order, its
        # events and its exceptions (as orders' migration 0015 fills it in).
        cursor.execute(
            f"UPDATE {orders} o SET changed_at = GREATEST(o.updated_at, "
            f"(SELECT max(at) FROM {quoted(OrderEvent)} e WHERE e.order_id = o.id), "
            f"(SELECT max(updated_at) FROM {fulfillment_exceptions} x WHERE x.order_id = o.id))"
        )

    def users_and_partner(cursor):
        nonlocal people
        people = make_people()

    steps = [
        ("people, partner, locations, SKUs", [seed, users_and_partner, sites, products]),
        (f"{LOCATION_COUNT * SKU_COUNT:,} stock levels", [stock_levels]),
        (f"{exceptions:,} orders", [order_rows]),
        (f"{exceptions * LINES_PER_ORDER:,} order lines", [order_lines]),
        (f"{exceptions:,} shipments and their lines", [shipment_rows, shipment_lines]),
        (f"{exceptions * EVENTS_PER_ORDER:,} order events", [order_events]),
        (f"{exceptions:,} exceptions", [exception_rows]),
        ("exception events", [exception_events]),
        ("split approvals", [splits]),
        ("the orders' change marks", [change_marks]),
    ]
    with make_progress() as progress:
        task = progress.add_task("loading", total=len(steps) + 1)
        for description, parts in steps:
            progress.update(task, description=f"loading {description}")
            with transaction.atomic(), connection.cursor() as cursor:
                # The history is written as it stands, not as changes now: the change-mark triggers wait.
                cursor.execute("SET LOCAL session_replication_role = replica")
                for part in parts:
                    part(cursor)
            progress.advance(task)
        progress.update(task, description="VACUUM ANALYZE")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        progress.advance(task)
    return people


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=True,
    )


# --- the pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    label: str
    who: str  # "coordinator", "ops" or "partner"
    url: str


def pages(people: People) -> list[Page]:
    from datetime import timedelta
    from urllib.parse import urlencode

    from django.http import QueryDict
    from django.utils import timezone

    from exceptions import actions, selectors
    from exceptions.models import OPEN_STATUSES, ExceptionType, FulfillmentException
    from inventory.models import Location
    from orders.models import Order, OrderStatus

    queue_ids = actions.workable_queue_ids(people.coordinator)

    def last_page(tab: str) -> int:
        # The queue pages no further than ROW_LIMIT rows; its last page is the last one within that.
        rows = selectors.exception_list(user=people.coordinator, tab=tab, queue_ids=queue_ids, params=QueryDict()).qs.count()
        return max(1, math.ceil(min(rows, selectors.ROW_LIMIT) / QUEUE_PAGE_SIZE))

    # The same exception at every size, so that the page shows the same parts (its actions depend on its owner, its
    # order's on the order's status): the open one of its type in the middle of the history, made unowned, at a
    # location, on a backordered order.
    candidates = FulfillmentException.objects.filter(type__code=FILTER_TYPE, status__in=OPEN_STATUSES, order__isnull=False)
    exception_id = candidates.order_by("id").values_list("id", flat=True)[candidates.count() // 2]
    location_id = Location.objects.get(code=FILTER_LOCATION).pk
    shown = FulfillmentException.objects.filter(pk=exception_id)
    shown.update(status="open", owner=None, location_id=location_id, waiting_since=None, first_response_at=None)
    order_id, external_id, customer_email, ship_country = shown.values_list(
        "order_id", "order__external_id", "order__customer_email", "order__ship_country"
    ).get()
    Order.objects.filter(pk=order_id).update(status=OrderStatus.BACKORDERED)
    type_id = ExceptionType.objects.get(code=FILTER_TYPE).pk
    changed_after = (timezone.now() - timedelta(days=1)).isoformat()
    # A partner that polls often: the moment just before the 20 latest changes, so every size answers 20 orders.
    polled_at = (Order.objects.order_by("-changed_at").values_list("changed_at", flat=True)[POLLED_CHANGES]).isoformat()

    def past_week(field_name: str) -> str:
        # The link of the admin's "Past 7 days" date filter (django.contrib.admin.filters.DateFieldListFilter).
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        return urlencode(
            {f"{field_name}__gte": str(today - timedelta(days=7)), f"{field_name}__lt": str(today + timedelta(days=1))}
        )

    listed = []
    for tab in selectors.TABS:
        listed.append(Page(f"queue {tab}", "coordinator", f"/queues/?tab={tab}"))
        listed.append(Page(f"queue {tab}, last page", "coordinator", f"/queues/?tab={tab}&page={last_page(tab)}"))
    listed += [
        Page("queue team, type filter", "coordinator", f"/queues/?tab=team&type={type_id}"),
        Page("queue team, location filter", "coordinator", f"/queues/?tab=team&location={location_id}"),
        Page("queue team, by priority", "coordinator", "/queues/?tab=team&sort=priority"),
        Page("queue team, oldest first", "coordinator", "/queues/?tab=team&sort=age"),
        Page("queue team, by type", "coordinator", "/queues/?tab=team&sort=type"),
        Page("queue team, by order value", "coordinator", "/queues/?tab=team&sort=value"),
        Page("queue team, 100 a page", "coordinator", "/queues/?tab=team&size=100"),
        Page("queue team, search order", "coordinator", f"/queues/?tab=team&q={external_id}"),
        Page("queue team, ops admin", "ops", "/queues/?tab=team"),
        Page("orders list", "coordinator", "/orders/"),
        Page("orders list, search", "coordinator", f"/orders/?q={external_id}"),
        Page("exception", "coordinator", f"/exceptions/{exception_id}/"),
        Page("order", "coordinator", f"/orders/{order_id}/"),
        Page("split approvals", "coordinator", "/approvals/splits/"),
        Page("inventory", "coordinator", "/inventory/"),
        Page("admin exceptions", "ops", "/admin/exceptions/fulfillmentexception/"),
        Page("admin exceptions, past 7 days", "ops", f"/admin/exceptions/fulfillmentexception/?{past_week('created_at')}"),
        Page("admin exceptions ?q=", "ops", f"/admin/exceptions/fulfillmentexception/?q={external_id}"),
        Page("admin exceptions ?q= email", "ops", f"/admin/exceptions/fulfillmentexception/?q={customer_email}"),
        Page("admin exceptions ?q= word", "ops", f"/admin/exceptions/fulfillmentexception/?q={SUMMARY_WORD}"),
        Page("admin orders", "ops", "/admin/orders/order/"),
        Page("admin orders, past 7 days", "ops", f"/admin/orders/order/?{past_week('placed_at')}"),
        Page("admin orders, country filter", "ops", f"/admin/orders/order/?ship_country={ship_country}"),
        Page("admin orders ?q=", "ops", f"/admin/orders/order/?q={external_id}"),
        Page("admin orders ?q= email", "ops", f"/admin/orders/order/?q={customer_email}"),
        Page("API orders ?updated_after=", "partner", f"/api/v1/orders/?updated_after={changed_after.replace('+', '%2B')}"),
        Page(
            "API orders, the 20 latest changes",
            "partner",
            f"/api/v1/orders/?updated_after={polled_at.replace('+', '%2B')}&page_size={POLLED_CHANGES}",
        ),
        Page("API exceptions", "partner", "/api/v1/exceptions/"),
    ]
    return listed


@dataclass
class Timing:
    page: Page
    seconds: list[float] = field(default_factory=list)
    queries: int = 0
    sql_seconds: float = 0.0
    statements: list[dict] = field(default_factory=list)
    error: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.seconds)
        # Nearest rank: the smallest value at or above 95 % of the requests.
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000


@dataclass
class Measured:
    exceptions: int
    load_seconds: float
    timings: dict[str, Timing]
    counts: dict


def clients(people: People) -> dict:
    from django.test import Client

    coordinator, ops = Client(), Client()
    coordinator.force_login(people.coordinator)
    ops.force_login(people.ops_admin)
    return {"coordinator": coordinator, "ops": ops, "partner": Client(HTTP_AUTHORIZATION=f"Token {people.token}")}


def time_page(client, page: Page, requests: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timing = Timing(page)
    for number in range(WARMUPS):
        if number == WARMUPS - 1:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(page.url)
            timing.queries = len(captured.captured_queries)
            timing.statements = list(captured.captured_queries)
            timing.sql_seconds = sum(float(query["time"]) for query in captured.captured_queries)
        else:
            response = client.get(page.url)
        if response.status_code != 200:
            timing.error = f"HTTP {response.status_code}"
            return timing
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(page.url)
        timing.seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            timing.error = f"HTTP {response.status_code}"
            return timing
    return timing


def measure(exceptions: int, requests: int, only: list[str]) -> Measured:
    from exceptions import actions, selectors
    from exceptions.models import FulfillmentException
    from orders.models import Order, OrderEvent, OrderStatus

    started = time.perf_counter()
    people = load(exceptions)
    load_seconds = time.perf_counter() - started
    counts = {
        "exceptions": FulfillmentException.objects.count(),
        "open": FulfillmentException.objects.filter(status__in=["open", "in_progress", "waiting"]).count(),
        "orders": Order.objects.count(),
        "order events": OrderEvent.objects.count(),
        "awaiting approval": Order.objects.filter(status=OrderStatus.AWAITING_APPROVAL).count(),
    }
    by_role = clients(people)
    listed = [page for page in pages(people) if not only or any(word in page.label for word in only)]
    counts["tabs"] = selectors.tab_counts(user=people.coordinator, queue_ids=actions.workable_queue_ids(people.coordinator))
    timings = {}
    with make_progress() as progress:
        task = progress.add_task("measuring", total=len(listed))
        for page in listed:
            progress.update(task, description=f"{exceptions:,}: {page.label}")
            try:
                timings[page.label] = time_page(by_role[page.who], page, requests)
            except Exception as error:  # a failing page is reported in its row, and the others are still measured
                timings[page.label] = Timing(page, error=f"{type(error).__name__}: {str(error).splitlines()[0][:80]}")
            progress.advance(task)
    return Measured(exceptions, load_seconds, timings, counts)


def explain(statements: list[dict], top: int = 2) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the slowest SELECTs of one request, each in a transaction rolled back."""
    from django.db import connection, transaction

    slowest = sorted(
        (query for query in statements if query["sql"].lstrip().upper().startswith("SELECT")),
        key=lambda query: float(query["time"]),
        reverse=True,
    )[:top]
    sections = []
    for query in slowest:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
                raise Rollback
        except Rollback:
            pass
        sections.append(f"  {float(query['time']) * 1000:.1f} ms: {query['sql'][:400]}\n{plan}")
    return "\n\n".join(sections)


class Rollback(Exception):
    """Leaves a transaction.atomic block by rolling it back."""


# --- reporting -------------------------------------------------------------------------------------


def report(measured: Measured, baseline: Measured | None) -> str:
    counts = measured.counts
    base_size = f"{(baseline or measured).exceptions:,}"
    lines = [
        f"{measured.exceptions:,} exceptions ({counts['open']:,} open), {counts['orders']:,} orders, "
        f"{counts['order events']:,} order events, {counts['awaiting approval']:,} splits awaiting approval; "
        f"loaded in {measured.load_seconds:.1f} s",
        "  the coordinator's tabs: " + ", ".join(f"{tab} {count:,}" for tab, count in counts["tabs"].items()),
        f"  {'page':<30}{'median ms':>10}{'p95 ms':>9}{'queries':>9}{'SQL ms':>8}{'p95/p95@' + base_size:>14}",
    ]
    for label, timing in measured.timings.items():
        if timing.error:
            lines.append(f"  {label:<30}{timing.error}")
            continue
        base = baseline.timings.get(label) if baseline else None
        ratio = (
            "-" if baseline is not None and (base is None or base.error) else f"{timing.p95_ms / (base or timing).p95_ms:.1f}x"
        )
        lines.append(
            f"  {label:<30}{timing.median_ms:>10.1f}{timing.p95_ms:>9.1f}{timing.queries:>9}"
            f"{timing.sql_seconds * 1000:>8.1f}{ratio:>14}"
        )
    return "\n".join(lines)


def summary(results: list[Measured]) -> str:
    sizes = [f"{m.exceptions:,}" for m in results]
    width = max(9, *(len(size) + 2 for size in sizes))
    header = (
        f"{'p95 ms at':<30}"
        + "".join(f"{size:>{width}}" for size in sizes)
        + "   ratio "
        + "  ".join(f"{size:>7}" for size in sizes[1:])
        + "   queries"
    )
    lines = ["summary (* where the queries differ between sizes)", header]
    for label in results[0].timings:
        timings = [m.timings.get(label) for m in results]
        cells, ratios, queries = [], [], []
        for timing in timings:
            ok = timing is not None and not timing.error
            cells.append(f"{timing.p95_ms:>{width}.1f}" if ok else f"{'error':>{width}}")
            queries.append(str(timing.queries) if ok else "-")
        base = timings[0]
        for timing in timings[1:]:
            ok = timing is not None and not timing.error and base is not None and not base.error
            ratios.append(f"{timing.p95_ms / base.p95_ms:>6.1f}x" if ok else f"{'-':>7}")
        differ = len({q for q in queries if q != "-"}) > 1
        lines.append(
            f"{('* ' if differ else '  ') + label:<30}"
            + "".join(cells)
            + "   ratio "
            + "  ".join(ratios)
            + "   "
            + "/".join(queries)
        )
    return "\n".join(lines)


def environment_line(server: ScratchServer, requests: int, total_seconds: float) -> str:
    return (
        f"PostgreSQL {server.version()}, Python {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{requests} requests per page after {WARMUPS} warm-ups; whole run {total_seconds / 60:.1f} min including loading"
    )


# --- command line ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES),
        help="exceptions per size, comma-separated (default %(default)s)",
    )
    parser.add_argument("--requests", type=int, default=REQUESTS, help=f"timed requests per page (default {REQUESTS})")
    parser.add_argument("--small", action="store_true", help="quick: 100 and 10,000 exceptions")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest statements of the pages that grew")
    parser.add_argument(
        "--pages",
        default="",
        help="measure only the pages whose name contains one of these comma-separated words, e.g. 'admin,queue team'",
    )
    args = parser.parse_args()
    try:
        args.sizes = list(SMALL_SIZES) if args.small else [int(size.replace("_", "")) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas, e.g. 100,10000")
    if any(size < 10 for size in args.sizes) or args.requests < 2:
        parser.error("each size must be at least 10 exceptions, --requests at least 2")
    args.pages = [word.strip() for word in args.pages.split(",") if word.strip()]
    return args


def main() -> None:
    args = parse_args()
    exit_on_sigterm()  # so a plain kill, too, drops the scratch databases
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    # The test client's host, plain HTTP, and a partner budget the repeated API requests do not run out of.
    os.environ.update(LOOPBACK_ENVIRONMENT)
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ["PARTNER_THROTTLE_RATE"] = "1000000/min"
    started = time.perf_counter()
    template, run_database = f"bench_pages_{os.getpid()}", f"bench_pages_{os.getpid()}_run"
    with ScratchServer(server_url) as server:  # drops both on the way out, also on error, Ctrl-C and SIGTERM
        server.create(template)
        setup_django_on(url_for_database(server_url, template))
        progress_console.print(f"migrating scratch database {template}")
        migrate_quietly()
        results: list[Measured] = []
        for size in args.sizes:
            close_django_connections()  # CREATE DATABASE ... TEMPLATE needs the template free of sessions
            server.drop(run_database)
            server.create(run_database, template=template)
            point_django_at(run_database)
            progress_console.print(f"[bold]{size:,} exceptions[/bold]")
            results.append(measure(size, args.requests, args.pages))
            print(report(results[-1], results[0] if len(results) > 1 else None), flush=True)
            if args.explain and size == args.sizes[-1] and len(results) > 1:
                for label, timing in results[-1].timings.items():
                    base = results[0].timings.get(label)
                    if timing.error or not base or base.error or timing.p95_ms < EXPLAIN_RATIO * base.p95_ms:
                        continue
                    print(f"--- {label} ({timing.p95_ms / base.p95_ms:.1f}x)\n{explain(timing.statements)}", flush=True)
            close_django_connections()
            server.drop(run_database)
        print(summary(results))
        print(environment_line(server, args.requests, time.perf_counter() - started))


if __name__ == "__main__":
    main()
