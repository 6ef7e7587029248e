"""Allocation benchmark: how fast `order_route` allocates READY orders, and how many
database queries one allocation costs.

Run from the project root against a PostgreSQL server (the one `scripts/test-services.sh start` prints):

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/allocation.py
    .venv/bin/python bench/allocation.py --orders 10000 --locations 10 --lines 3
    .venv/bin/python bench/allocation.py --matrix --orders 300 --locations 3

Without --orders it runs a matrix: orders in (orders/10, orders) x locations in (2, locations),
that is (1,000, 10,000) x (2, 10) by default, each cell on a freshly seeded database, so the
table shows whether queries per order grow with the number of orders or locations (they must
not). With --orders and without --matrix it runs that one cell.

The database DATABASE_URL names is never touched: the script creates bench_allocation_<pid> on
the same server, migrates it, and copies it (CREATE DATABASE ... TEMPLATE) into a fresh
bench_allocation_<pid>_run for every cell. Both are dropped at the end, also on error.

Each cell seeds N active US locations, 200 SKUs, one partner, a routing rule that makes express
splits wait for approval, stock sized to the orders' demand (each SKU kept at only some sites,
a few SKUs scarce), then the READY orders. Seeding is not measured. Measured is only the loop
that calls order_route once per order, oldest first (one committed transaction each), timed with
time.perf_counter. Queries are every statement Django sends during that loop, SAVEPOINTs
included, counted with connection.execute_wrapper.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.scratch import (
    ScratchServer,
    close_django_connections,
    exit_on_sigterm,
    migrate_quietly,
    point_django_at,
    require_postgres,
    setup_django_on,
    url_for_database,
)

SKU_COUNT = 200
SEED = 20240601
# Each SKU is kept at about this share of the locations, so a 3-line order does not always find one site holding all of it.
STOCKED_SHARE = 0.7
# Every SCARCE_EVERY-th SKU gets less stock than its orders ask for: the late orders wanting it backorder.
SCARCE_EVERY = 25
SCARCE_SUPPLY = 0.6
AMPLE_SUPPLY = 1.15
EXPRESS_SHARE = 0.1
MAX_UNITS_PER_LINE = 3
PROGRESS_EVERY = 100
OUTCOMES = ("single", "split", "split_pending", "backorder")

progress_console = Console(stderr=True)


# --- seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    orders: int
    locations: int
    lines: int

    @property
    def label(self) -> str:
        return f"{self.orders:,} orders x {self.locations} locations x {self.lines} lines"


def planned_orders(scenario: Scenario, rng: random.Random) -> list[list[tuple[int, int]]]:
    """Per order, (SKU index, units) for each line; distinct SKUs within an order."""
    lines = min(scenario.lines, SKU_COUNT)
    return [
        [(sku, rng.randint(1, MAX_UNITS_PER_LINE)) for sku in rng.sample(range(SKU_COUNT), lines)] for _ in range(scenario.orders)
    ]


def stock_plan(orders: list[list[tuple[int, int]]], locations: int, rng: random.Random) -> dict[tuple[int, int], int]:
    """Units to receive per (location index, SKU index): sized to the orders' demand, spread unevenly over some sites."""
    demand: Counter[int] = Counter()
    for lines in orders:
        for sku, units in lines:
            demand[sku] += units
    plan: dict[tuple[int, int], int] = {}
    sites_per_sku = max(1, math.ceil(locations * STOCKED_SHARE))
    for sku in range(SKU_COUNT):
        supply = round(demand[sku] * (SCARCE_SUPPLY if sku % SCARCE_EVERY == 0 else AMPLE_SUPPLY))
        sites = rng.sample(range(locations), sites_per_sku)
        weights = [rng.uniform(0.5, 1.5) for _ in sites]
        for site, weight in zip(sites, weights, strict=True):
            units = round(supply * weight / sum(weights))
            if units:
                plan[(site, sku)] = units
    return plan


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=True,
    )


def seed(scenario: Scenario, rng: random.Random) -> None:
    from django.utils import timezone

    from core.actors import Actor
    from inventory.models import Location, Sku
    from inventory.services import stock_receive
    from orders.addresses import Address
    from orders.models import RoutingRule
    from orders.services.intake import LineInput, order_create
    from orders.services.lifecycle import order_mark_ready
    from orders.services.partners import partner_ensure

    actor = Actor.job("bench")
    locations = [
        Location.objects.create(code=f"LOC-{n:02d}", name=f"Bench site {n}", country="US", ships_to=["US"], active=True)
        for n in range(1, scenario.locations + 1)
    ]
    skus = Sku.objects.bulk_create(
        Sku(code=f"BENCH-{n:03d}", name=f"Bench product {n}", unit_price=Decimal("12.50")) for n in range(1, SKU_COUNT + 1)
    )
    partner, _, _ = partner_ensure(code="bench", name="Bench storefront")
    RoutingRule.objects.create(
        name="Express: splits need approval", priority=10, service_levels=["express"], split_requires_approval=True
    )

    orders = planned_orders(scenario, rng)
    receipts = stock_plan(orders, scenario.locations, rng)
    with make_progress() as progress:
        for (site, sku), units in progress.track(receipts.items(), description="receiving stock"):
            stock_receive(location_id=locations[site].pk, sku_id=skus[sku].pk, quantity=units, actor=actor, reference="bench")
        address = Address(
            name="Ada Lovelace", line1="1 Main St", city="Springfield", region="IL", postal_code="62701", country="US"
        )
        for number, lines in enumerate(progress.track(orders, description="creating READY orders"), start=1):
            order = order_create(
                partner=partner,
                external_id=f"BENCH-{number:06d}",
                placed_at=timezone.now(),
                customer_name="Ada Lovelace",
                lines=[LineInput(skus[sku].code, units, "each", Decimal("12.50")) for sku, units in lines],
                actor=actor,
                address=address,
                service_level="express" if rng.random() < EXPRESS_SHARE else "standard",
            )
            order_mark_ready(order=order, actor=actor)


# --- measuring ------------------------------------------------------------------------------


class QueryCounter:
    """An execute_wrapper that only counts: no query text is kept."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, statement, params, many, context):
        self.count += 1
        return execute(statement, params, many, context)


@dataclass
class Result:
    scenario: Scenario
    seconds: float = 0.0
    queries: list[int] = field(default_factory=list)
    queries_by_outcome: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @property
    def orders_per_second(self) -> float:
        return len(self.queries) / self.seconds if self.seconds else 0.0

    @property
    def mean_queries(self) -> float:
        return sum(self.queries) / len(self.queries) if self.queries else 0.0

    def outcome_count(self, outcome: str) -> int:
        return len(self.queries_by_outcome.get(outcome, []))


def allocate_all(scenario: Scenario) -> Result:
    from django.db import connection

    from core.actors import Actor
    from orders.models import Order, OrderStatus
    from orders.services.allocation import order_route

    actor = Actor.job("bench")
    orders = list(Order.objects.filter(status=OrderStatus.READY).order_by("pk"))
    result, counter = Result(scenario), QueryCounter()
    with make_progress() as progress, connection.execute_wrapper(counter):
        task = progress.add_task("allocating (measured)", total=len(orders))
        started = time.perf_counter()
        for done, order in enumerate(orders, start=1):
            before = counter.count
            decision = order_route(order=order, actor=actor)
            used = counter.count - before
            result.queries.append(used)
            result.queries_by_outcome[decision.outcome].append(used)
            if done % PROGRESS_EVERY == 0:
                progress.update(task, completed=done)
        result.seconds = time.perf_counter() - started
    return result


def run_cell(server: ScratchServer, template: str, run_database: str, scenario: Scenario) -> Result:
    close_django_connections()  # CREATE DATABASE ... TEMPLATE needs the template free of sessions
    server.drop(run_database)
    server.create(run_database, template=template)
    point_django_at(run_database)
    progress_console.print(f"[bold]{scenario.label}[/bold]: seeding")
    seed(scenario, random.Random(SEED))
    result = allocate_all(scenario)
    close_django_connections()
    server.drop(run_database)
    print_cell(result)
    return result


# --- reporting ------------------------------------------------------------------------------


def print_cell(result: Result) -> None:
    by_outcome = ", ".join(
        f"{outcome} {len(counts)} ({sum(counts) / len(counts):.1f} q, {min(counts)}-{max(counts)})"
        for outcome, counts in sorted(result.queries_by_outcome.items())
    )
    print(
        f"{result.scenario.label}: {result.seconds:.1f} s, "
        f"{result.orders_per_second:,.0f} orders/s, queries/order mean {result.mean_queries:.2f} max {max(result.queries)}; "
        f"by outcome: {by_outcome}",
        flush=True,
    )


def format_table(results: list[Result]) -> str:
    header = ("orders", "locations", "lines", "orders/s", "queries/order", "max queries", *OUTCOMES)
    rows = [
        (
            f"{r.scenario.orders:,}",
            str(r.scenario.locations),
            str(r.scenario.lines),
            f"{r.orders_per_second:,.0f}",
            f"{r.mean_queries:.2f}",
            str(max(r.queries)),
            *(f"{r.outcome_count(o):,}" for o in OUTCOMES),
        )
        for r in results
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def environment_line(server: ScratchServer, total_seconds: float) -> str:
    return (
        f"PostgreSQL {server.version()}, Python {platform.python_version()}, {os.cpu_count()} CPU(s), "
        f"{SKU_COUNT} SKUs, seed {SEED}; whole run {total_seconds / 60:.1f} min including seeding"
    )


# --- command line ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, help="orders to allocate (default 10,000)")
    parser.add_argument("--locations", type=int, default=10, help="locations (default 10)")
    parser.add_argument("--lines", type=int, default=3, help="lines per order (default 3)")
    parser.add_argument(
        "--matrix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run (orders/10, orders) x (2, locations); on by default when --orders is not given",
    )
    args = parser.parse_args()
    if (args.orders is not None and args.orders < 1) or args.locations < 1 or args.lines < 1:
        parser.error("--orders, --locations and --lines must be at least 1")
    return args


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    orders = args.orders or 10_000
    matrix = args.orders is None if args.matrix is None else args.matrix
    if not matrix:
        return [Scenario(orders, args.locations, args.lines)]
    order_scales = sorted({max(1, orders // 10), orders})
    location_scales = sorted({min(2, args.locations), args.locations})
    return [Scenario(o, loc, args.lines) for o in order_scales for loc in location_scales]


def main() -> None:
    args = parse_args()
    exit_on_sigterm()  # so a plain kill, too, drops the scratch databases
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    started = time.perf_counter()
    template, run_database = f"bench_allocation_{os.getpid()}", f"bench_allocation_{os.getpid()}_run"
    with ScratchServer(server_url) as server:  # drops both on the way out, also on error, Ctrl-C and SIGTERM
        server.create(template)
        setup_django_on(url_for_database(server_url, template))
        progress_console.print(f"migrating scratch database {template}")
        migrate_quietly()
        results = [run_cell(server, template, run_database, scenario) for scenario in scenarios(args)]
        print()
        print(format_table(results))
        print(environment_line(server, time.perf_counter() - started))


if __name__ == "__main__":
    main()
