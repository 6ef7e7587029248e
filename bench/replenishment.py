"""Replenishment benchmark: how long `replenish()` takes against one aggregate query over the same order lines,
and how many queries it sends.

Run from the project root against a PostgreSQL server (the one `scripts/test-services.sh start` prints):

    DATABASE_URL=postgres://... .venv/bin/python bench/replenishment.py             # 100,000 levels, 1,000,000 lines
    .venv/bin/python bench/replenishment.py --small                                  # 10,000 levels, 100,000 lines
    .venv/bin/python bench/replenishment.py --levels 50000 --lines 500000 --explain

Two sizes: a tenth of --levels and --lines, then all of them (with --small, 1,000 levels and 10,000 lines, then
10,000 and 100,000), each on a fresh copy of a migrated scratch database (bench_replenishment_<pid>, copied with
CREATE DATABASE ... TEMPLATE into bench_replenishment_<pid>_run). Both are dropped at the end, also on error, Ctrl-C
and SIGTERM. The database DATABASE_URL names is never touched.

Each size is loaded with set-based SQL (INSERT ... SELECT ... FROM generate_series), then VACUUM ANALYZE:
SKU_COUNT SKUs (fewer when --levels is smaller) at as many active locations as make up the levels, one stock level
for each pair (lead time 3-10 days, on hand skewed low, a little reserved, about 1 % with units on order), and the
order lines of LINES_PER_ORDER-line orders, each order shipped from one random location in one shipment planned at a
random moment of the last HISTORY_DAYS days (so about 28/60 of the lines fall in the 28-day window); 5 % of the
shipments are cancelled, 3 % still planned. A few SKUs sell far more than the rest, scattered over the id range.

Measured, --rounds times (3 by default) and alternating: `replenish(days=28, now=...)` as the nightly job calls it
(the first round writes the suggestions, the later ones refresh them; VACUUM between rounds, not timed), and the floor,
one aggregate query over the same joins, window and filter as `demand_query`, grouped by location and SKU, that sends
back a single row (so the floor is the database's work, not the transfer of its groups). The floor is also timed
without parallel workers: the replenishment's statements write, and PostgreSQL plans no parallel workers for a
statement that writes. Queries are the statements Django sends during one `replenish()` (BEGIN and COMMIT
included), counted with CaptureQueriesContext.

--explain then prints EXPLAIN (ANALYZE, BUFFERS) of the floor and of the writing statements of the first slice at
the larger size, each in a transaction rolled back.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.scratch import (
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

DAYS = 28
HISTORY_DAYS = 60
SKU_COUNT = 1_000
LINES_PER_ORDER = 4
ROUNDS = 3
BAR = 5.0
CANCELLED_SHARE = 0.05
PLANNED_SHARE = 0.03
ON_ORDER_SHARE = 0.01
# Demand per SKU falls off like 1/sqrt(rank); the rank goes through this prime to scatter the best sellers over
# the id range, so no one slice of SKUs gets all of them (any SKU count below it gives a permutation).
SCATTER_PRIME = 7919

progress_console = Console(stderr=True)


@dataclass(frozen=True)
class Size:
    levels: int
    lines: int

    @property
    def skus(self) -> int:
        return min(SKU_COUNT, self.levels)

    @property
    def locations(self) -> int:
        return max(1, self.levels // self.skus)

    @property
    def orders(self) -> int:
        return -(-self.lines // LINES_PER_ORDER)

    @property
    def label(self) -> str:
        sites = f"{self.locations:,} location{'s' if self.locations > 1 else ''}"
        return f"{self.locations * self.skus:,} levels ({sites} x {self.skus:,} SKUs), {self.lines:,} order lines"


# --- loading ---------------------------------------------------------------------------------------


def load(size: Size, until: datetime) -> None:
    from django.db import connection, transaction

    from inventory.models import Location, ReplenishmentSuggestion, Sku, StockLevel, SuggestionStatus
    from orders.models import Order, OrderLine, OrderStatus, Partner, Shipment, ShipmentLine, ShipmentStatus

    locations, skus, orders = quoted(Location), quoted(Sku), quoted(Order)
    shipments, order_lines, levels = quoted(Shipment), quoted(OrderLine), quoted(StockLevel)
    history = f"interval '{HISTORY_DAYS} days'"

    def partner(cursor):
        insert_select(cursor, Partner, {"code": "'bench'", "name": "'Bench storefront'", "created_at": "now()"}, "(SELECT 1) one")

    def sites(cursor):
        insert_select(
            cursor,
            Location,
            {"code": "'LOC-' || g", "name": "'Bench site ' || g", "country": "'US'", "ships_to": """'["US"]'::jsonb"""},
            f"generate_series(1, {size.locations}) g",
        )

    def products(cursor):
        insert_select(
            cursor,
            Sku,
            {
                "code": "'SKU-' || g",
                "name": "'Bench product ' || g",
                "case_pack": "(ARRAY[1, 1, 6, 12])[1 + mod(g, 4)]",
                "service_level_percent": "(ARRAY[90, 95, 95, 98, 99])[1 + mod(g, 5)]",
                "unit_price": "12.50",
            },
            f"generate_series(1, {size.skus}) g",
        )

    def stock_levels(cursor):
        insert_select(
            cursor,
            StockLevel,
            {
                "location_id": "pick.location_id",
                "sku_id": "pick.sku_id",
                "on_hand": "pick.on_hand",
                "reserved": "CAST(FLOOR(pick.on_hand * random() * 0.25) AS integer)",
                "lead_time_days": "3 + CAST(FLOOR(random() * 8) AS integer)",
                "updated_at": "now()",
            },
            f"""(SELECT l.id AS location_id, s.id AS sku_id, CAST(FLOOR(60 * power(random(), 2)) AS integer) AS on_hand
                 FROM {locations} l CROSS JOIN {skus} s) pick""",
        )

    def on_order(cursor):
        insert_select(
            cursor,
            ReplenishmentSuggestion,
            {
                "location_id": "level.location_id",
                "sku_id": "level.sku_id",
                "status": f"'{SuggestionStatus.ORDERED}'",
                "quantity": "24",
                "quantity_ordered": "24",
                "demand_per_day": "0",
                "demand_sigma": "0",
                "demand_days": str(DAYS),
                "lead_time_days": "level.lead_time_days",
                "review_period_days": "level.review_period_days",
                "service_level_percent": "95",
                "safety_stock": "0",
                "reorder_point": "0",
                "order_up_to": "0",
                "position": "level.on_hand - level.reserved",
                "created_at": "now()",
                "updated_at": "now()",
            },
            f"{levels} level WHERE random() < {ON_ORDER_SHARE}",
        )

    def order_rows(cursor):
        insert_select(
            cursor,
            Order,
            {
                "partner_id": f"(SELECT id FROM {quoted(Partner)})",
                "external_id": "CAST(pick.g AS text)",
                "status": f"'{OrderStatus.SHIPPED}'",
                "customer_name": "'Bench customer'",
                "placed_at": "pick.at",
                "created_at": "pick.at",
                "updated_at": "pick.at",
            },
            f"(SELECT g, CAST(%s AS timestamptz) - random() * {history} AS at FROM generate_series(1, {size.orders}) g) pick",
            [until],
        )

    def lines(cursor):
        rank = f"CAST(FLOOR(power(random(), 2) * {size.skus}) AS integer)"
        insert_select(
            cursor,
            OrderLine,
            {
                "order_id": "pick.order_id",
                "line_number": "pick.n",
                "sku_code": "s.code",
                "sku_id": "s.id",
                "quantity": "pick.q",
                "base_quantity": "pick.q",
                "unit_price": "12.50",
            },
            f"""(SELECT o.id AS order_id, n, 1 + mod({rank} * {SCATTER_PRIME}, {size.skus}) AS k,
                        1 + CAST(FLOOR(random() * 5) AS integer) AS q
                 FROM {orders} o CROSS JOIN generate_series(1, {LINES_PER_ORDER}) n
                 WHERE (CAST(o.external_id AS integer) - 1) * {LINES_PER_ORDER} + n <= {size.lines}) pick
                JOIN {skus} s ON s.code = 'SKU-' || pick.k""",
        )

    def shipment_rows(cursor):
        insert_select(
            cursor,
            Shipment,
            {
                "order_id": "pick.id",
                "location_id": f"pick.sites[1 + CAST(FLOOR(random() * {size.locations}) AS integer)]",
                "status": f"""CASE WHEN pick.r < {CANCELLED_SHARE} THEN '{ShipmentStatus.CANCELLED}'
                                   WHEN pick.r < {CANCELLED_SHARE + PLANNED_SHARE} THEN '{ShipmentStatus.PLANNED}'
                                   ELSE '{ShipmentStatus.SHIPPED}' END""",
                "created_at": "pick.placed_at",
                "updated_at": "pick.placed_at",
            },
            f"""(SELECT o.id, o.placed_at, random() AS r, ids.sites
                 FROM {orders} o CROSS JOIN (SELECT array_agg(id ORDER BY id) AS sites FROM {locations}) ids) pick""",
        )

    def shipment_lines(cursor):
        insert_select(
            cursor,
            ShipmentLine,
            {"shipment_id": "sh.id", "order_line_id": "ol.id", "quantity": "ol.base_quantity"},
            f"{shipments} sh JOIN {order_lines} ol ON ol.order_id = sh.order_id",
        )

    steps = [
        ("partner, locations, SKUs", [partner, sites, products]),
        (f"{size.locations * size.skus:,} stock levels", [stock_levels, on_order]),
        (f"{size.orders:,} orders", [order_rows]),
        (f"{size.lines:,} order lines", [lines]),
        (f"{size.orders:,} shipments", [shipment_rows]),
        (f"{size.lines:,} shipment lines", [shipment_lines]),
    ]
    with make_progress() as progress:
        task = progress.add_task("loading", total=len(steps) + 1)
        for description, parts in steps:
            progress.update(task, description=f"loading {description}")
            with transaction.atomic(), connection.cursor() as cursor:
                for part in parts:
                    part(cursor)
            progress.advance(task)
        progress.update(task, description="VACUUM ANALYZE")
        vacuum()
        progress.advance(task)


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=True,
    )


# --- measuring -------------------------------------------------------------------------------------


def floor_sql() -> str:
    from orders.models import OrderLine, Shipment, ShipmentLine, ShipmentStatus

    return f"""
    SELECT count(*), sum(units) FROM (
        SELECT shipment.location_id, order_line.sku_id, count(*) AS lines, sum(shipment_line.quantity) AS units
        FROM {quoted(ShipmentLine)} shipment_line
        JOIN {quoted(Shipment)} shipment ON shipment.id = shipment_line.shipment_id
        JOIN {quoted(OrderLine)} order_line ON order_line.id = shipment_line.order_line_id
        WHERE shipment.created_at >= %s AND shipment.created_at < %s AND shipment.status <> '{ShipmentStatus.CANCELLED}'
        GROUP BY 1, 2
    ) per_level
    """


@dataclass
class Measured:
    size: Size
    load_seconds: float = 0.0
    runs: list[float] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)
    serial_floors: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    withdrawn: list[int] = field(default_factory=list)
    window_lines: int = 0
    window_units: int = 0
    groups: int = 0
    levels: int = 0
    with_demand: int = 0
    at_or_below: int = 0
    statements: list[str] = field(default_factory=list)
    # Seconds per kind of statement, summed over the rounds: where a run's time goes.
    breakdown: dict[str, float] = field(default_factory=dict)

    @property
    def ratio_best(self) -> float:
        return min(self.runs) / min(self.floors)

    @property
    def ratio_median(self) -> float:
        return statistics.median(self.runs) / statistics.median(self.floors)


def time_floor(window: tuple[datetime, datetime], *, parallel: bool) -> tuple[float, int, int]:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if not parallel:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        started = time.perf_counter()
        cursor.execute(floor_sql(), list(window))
        groups, units = cursor.fetchone()
        return time.perf_counter() - started, groups, units or 0


def measure(size: Size, now: datetime, rounds: int) -> Measured:
    from django.db import connection
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext

    from inventory.models import StockLevel
    from orders.models import ShipmentLine, ShipmentStatus
    from orders.services.replenishment import replenish

    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    window = (until - timedelta(days=DAYS), until)
    measured = Measured(size)
    started = time.perf_counter()
    load(size, until)
    measured.load_seconds = time.perf_counter() - started

    in_window = ShipmentLine.objects.filter(shipment__created_at__gte=window[0], shipment__created_at__lt=window[1])
    measured.window_lines = in_window.exclude(shipment__status=ShipmentStatus.CANCELLED).count()
    with make_progress() as progress:
        task = progress.add_task("measuring", total=rounds)
        for number in range(1, rounds + 1):
            progress.update(task, description=f"round {number}: floor")
            seconds, measured.groups, measured.window_units = time_floor(window, parallel=True)
            measured.floors.append(seconds)
            measured.serial_floors.append(time_floor(window, parallel=False)[0])
            progress.update(task, description=f"round {number}: replenish()")
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                # Each round is the next night back: the window moves a day, so the figures move as they would.
                result = replenish(days=DAYS, now=now - timedelta(days=number - 1))
                measured.runs.append(time.perf_counter() - started)
            measured.queries.append(len(captured.captured_queries))
            measured.statements = [query["sql"] for query in captured.captured_queries]
            for query in captured.captured_queries:
                kind = statement_kind(query["sql"])
                measured.breakdown[kind] = measured.breakdown.get(kind, 0.0) + float(query["time"])
            measured.updated.append(result.levels_updated)
            measured.written.append(result.suggestions_written)
            measured.withdrawn.append(result.suggestions_withdrawn)
            progress.update(task, description=f"round {number}: VACUUM")
            vacuum()
            progress.advance(task)
    levels = StockLevel.objects.all()
    measured.levels = levels.count()
    measured.with_demand = levels.filter(demand_per_day__gt=0).count()
    measured.at_or_below = levels.filter(demand_per_day__gt=0, reorder_point__gte=F("on_hand") - F("reserved")).count()
    return measured


def statement_kind(sql: str) -> str:
    if "CREATE TEMPORARY TABLE" in sql:
        return "staging the demand"
    if sql.lstrip().startswith("WITH demand"):
        return "the slices' statements"
    return "the rest"


def explain(measured: Measured, now: datetime) -> str:
    """The plans of the floor and of the first slice's two writing statements, each rolled back."""
    from django.db import connection, transaction

    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    writing = [sql for sql in measured.statements if sql.lstrip().startswith("WITH")][:2]
    sections = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in ("work_mem", "shared_buffers", "jit")))
        work_mem, shared_buffers, jit = cursor.fetchone()
    sections.append(f"work_mem {work_mem}, shared_buffers {shared_buffers}, jit {jit}")
    plans = [("floor", floor_sql(), [until - timedelta(days=DAYS), until])]
    plans += [(f"slice 1, statement {number}", sql, None) for number, sql in enumerate(writing, start=1)]
    for title, sql, params in plans:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                raise Rollback
        except Rollback:
            pass
        sections.append(f"--- {title}\n{plan}")
    return "\n\n".join(sections)


class Rollback(Exception):
    """Leaves a transaction.atomic block by rolling it back."""


# --- reporting -------------------------------------------------------------------------------------


def seconds_line(label: str, values: list[float]) -> str:
    each = "  ".join(f"{value:7.3f}" for value in values)
    return f"  {label:<22}{each}    best {min(values):7.3f} s  median {statistics.median(values):7.3f} s"


def report(measured: Measured) -> str:
    size = measured.size
    verdict = "met" if measured.ratio_median <= BAR else "NOT met"
    share = measured.at_or_below / measured.levels if measured.levels else 0.0
    written = measured.written[0]
    return "\n".join(
        [
            f"{size.label}, loaded in {measured.load_seconds:.1f} s",
            f"  {measured.window_lines:,} lines ({measured.window_units:,} units) in the {DAYS}-day window, not cancelled; "
            f"{measured.groups:,} (location, SKU) groups",
            seconds_line("replenish()", measured.runs),
            seconds_line("floor (1 query)", measured.floors),
            seconds_line("floor, no parallel", measured.serial_floors),
            f"  ratio run/floor       best {measured.ratio_best:.1f}x  median {measured.ratio_median:.1f}x  "
            f"(bar {BAR:.0f}x on the median: {verdict})",
            f"  ratio, serial floor   median {statistics.median(measured.runs) / statistics.median(measured.serial_floors):.1f}x",
            f"  queries per run       {', '.join(str(count) for count in measured.queries)}",
            f"  levels updated        {', '.join(f'{count:,}' for count in measured.updated)}; "
            f"suggestions written {', '.join(f'{count:,}' for count in measured.written)} "
            f"({written / measured.levels:.1%} of the levels), "
            f"withdrawn {', '.join(f'{count:,}' for count in measured.withdrawn)}",
            f"  levels with demand    {measured.with_demand:,}; at or below their reorder point {measured.at_or_below:,} "
            f"({share:.1%} of all levels)",
            "  time per run          "
            + ", ".join(f"{kind} {seconds / len(measured.runs):.2f} s" for kind, seconds in measured.breakdown.items()),
        ]
    )


def summary(results: list[Measured]) -> str:
    counts = ", ".join(
        f"{'/'.join(str(count) for count in sorted(set(m.queries)))} at {m.size.levels:,} levels and {m.size.lines:,} lines"
        for m in results
    )
    same = len({count for m in results for count in m.queries}) == 1
    return f"queries per replenish(): {counts} (bar: the same at both sizes; {'met' if same else 'NOT met'})"


def environment_line(server: ScratchServer, rounds: int, total_seconds: float) -> str:
    return (
        f"PostgreSQL {server.version()}, Python {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{rounds} rounds; whole run {total_seconds / 60:.1f} min including loading"
    )


# --- command line ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, default=100_000, help="stock levels at the larger size (default 100,000)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="order lines at the larger size (default 1,000,000)")
    parser.add_argument("--small", action="store_true", help="quick: 10,000 levels and 100,000 lines")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"timed rounds per size (default {ROUNDS})")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the floor and one slice at the larger size")
    args = parser.parse_args()
    if args.small:
        args.levels, args.lines = 10_000, 100_000
    if args.levels < 10 or args.lines < 10 or args.rounds < 1:
        parser.error("--levels and --lines must be at least 10, --rounds at least 1")
    return args


def main() -> None:
    args = parse_args()
    exit_on_sigterm()  # so a plain kill, too, drops the scratch databases
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    started = time.perf_counter()
    template, run_database = f"bench_replenishment_{os.getpid()}", f"bench_replenishment_{os.getpid()}_run"
    sizes = [Size(args.levels // 10, args.lines // 10), Size(args.levels, args.lines)]
    with ScratchServer(server_url) as server:  # drops both on the way out, also on error, Ctrl-C and SIGTERM
        server.create(template)
        setup_django_on(url_for_database(server_url, template))
        progress_console.print(f"migrating scratch database {template}")
        migrate_quietly()

        from django.utils import timezone

        now = timezone.now()
        results = []
        for size in sizes:
            close_django_connections()  # CREATE DATABASE ... TEMPLATE needs the template free of sessions
            server.drop(run_database)
            server.create(run_database, template=template)
            point_django_at(run_database)
            progress_console.print(f"[bold]{size.label}[/bold]")
            results.append(measure(size, now, args.rounds))
            print(report(results[-1]), flush=True)
            if args.explain and size is sizes[-1]:
                print(explain(results[-1], now), flush=True)
            close_django_connections()
            server.drop(run_database)
        print(summary(results))
        print(environment_line(server, args.rounds, time.perf_counter() - started))


if __name__ == "__main__":
    main()
