"""Dashboard benchmark: the latency and the queries of `/` for a day and for a year, on the demo data ten times over.

Run from the project root against a PostgreSQL server (the one `scripts/test-services.sh start` prints):

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py --copies 10 --requests 30

A scratch database (bench_dashboard_<pid>) is migrated and seeded with the demo (fulfillment.demo.seed_demo, the
last days of an operation replayed through the services); then the demo's orders, lines, shipments, order events,
routing decisions, exceptions, outbox messages, deliveries and inbound events are copied --copies - 1 more times with
set-based INSERT ... SELECT, each copy's ids moved past the ones before it and its timestamps SHIFT_DAYS further back,
so the copies lie side by side over the year; then VACUUM ANALYZE. It is dropped at the end, also on error, Ctrl-C
and SIGTERM. The database DATABASE_URL names is never touched.

`/` is requested in process with django.test.Client as the demo coordinator for the last day and the last 365 days:
WARMUPS times (the last counting its queries and naming the SLOWEST), then --requests times timed with
time.perf_counter (median, p95).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.scratch import (
    LOOPBACK_ENVIRONMENT,
    ScratchServer,
    exit_on_sigterm,
    migrate_quietly,
    quoted,
    require_postgres,
    setup_django_on,
    url_for_database,
)

WARMUPS = 3
SLOWEST = 3
SQL_SHOWN = 160
SHIFT_DAYS = 30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="how many times the demo data is there (default 10)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per period (default 30)")
    return parser.parse_args()


def copied_models() -> list:
    """In the order they are copied: each refers only to models before it (or to ones that are not copied)."""
    from exceptions.models import FulfillmentException
    from integrations.models import Delivery, InboundEvent, OutboxMessage
    from orders.models import Order, OrderEvent, OrderLine, RoutingDecision, Shipment

    return [Order, OrderLine, Shipment, OrderEvent, RoutingDecision, FulfillmentException, OutboxMessage, Delivery, InboundEvent]


# Columns unique on their own or with a column the copy keeps: the copy's number is appended.
SUFFIXED = {
    ("orders_order", "external_id"),
    ("exceptions_fulfillmentexception", "dedupe_key"),
    ("integrations_inboundevent", "sender_id"),
}


def multiply(copies: int) -> None:
    """Copy the data copies - 1 more times, set-based: one INSERT ... SELECT per table and copy."""
    from django.db import connection, models, transaction

    copied = copied_models()
    with connection.cursor() as cursor:
        offsets = {}
        for model in copied:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {quoted(model)}")
            offsets[model] = cursor.fetchone()[0]
        with transaction.atomic():
            for copy in range(1, copies):
                for model in copied:
                    columns, values = [], []
                    for field in model._meta.concrete_fields:
                        column = field.column
                        quoted_column = connection.ops.quote_name(column)
                        columns.append(quoted_column)
                        target = field.related_model if field.is_relation else None
                        if field.primary_key:
                            values.append(f"{quoted_column} + {copy * offsets[model]}")
                        elif target in offsets:
                            values.append(f"{quoted_column} + {copy * offsets[target]}")
                        elif isinstance(field, models.DateTimeField):
                            values.append(f"{quoted_column} - interval '{copy * SHIFT_DAYS} days'")
                        elif isinstance(field, models.UUIDField):
                            values.append("gen_random_uuid()")
                        elif (model._meta.db_table, column) in SUFFIXED:
                            values.append(f"{quoted_column} || '~{copy}'")
                        else:
                            values.append(quoted_column)
                    cursor.execute(
                        f"INSERT INTO {quoted(model)} ({', '.join(columns)}) "
                        f"SELECT {', '.join(values)} FROM {quoted(model)} WHERE id < {offsets[model]}"
                    )
        for model in copied:
            # Later inserts would otherwise be handed ids the copies took.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', 'id'), (SELECT MAX(id) FROM {quoted(model)}))"
            )
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def counts() -> dict[str, int]:
    from exceptions.models import FulfillmentException
    from orders.models import Order

    return {"orders": Order.objects.count(), "exceptions": FulfillmentException.objects.count()}


def measure(path: str, requests: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username="coordinator"))
    for _ in range(WARMUPS):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        # Counted now: the next request's start empties the log the capture reads from.
        statements = list(captured.captured_queries)
        assert response.status_code == 200, (path, response.status_code)
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "p50": statistics.median(timings),
        "p95": timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))],
        "queries": len(statements),
        "slowest": sorted(statements, key=lambda statement: -float(statement["time"]))[:SLOWEST],
    }


def main() -> None:
    args = parse_args()
    exit_on_sigterm()
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    os.environ.update(LOOPBACK_ENVIRONMENT)
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    started = time.perf_counter()
    name = f"bench_dashboard_{os.getpid()}"
    with ScratchServer(server_url) as server:
        server.create(name)
        setup_django_on(url_for_database(server_url, name))
        print(f"migrating and seeding {name}", flush=True)
        migrate_quietly()
        from django.utils import timezone

        from fulfillment.demo import seed_demo

        seed_demo()
        demo = counts()
        multiply(args.copies)
        total = counts()
        print(
            f"demo: {demo['orders']:,} orders, {demo['exceptions']:,} exceptions; x{args.copies}: "
            f"{total['orders']:,} orders, {total['exceptions']:,} exceptions over {args.copies * SHIFT_DAYS} days",
            flush=True,
        )
        today = timezone.localdate()
        periods = {
            "1 day": f"/?from={today.isoformat()}&to={today.isoformat()}",
            "365 days": f"/?from={(today - timedelta(days=364)).isoformat()}&to={today.isoformat()}",
        }
        print(f"{'period':<10} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
        for label, path in periods.items():
            figures = measure(path, args.requests)
            print(f"{label:<10} {figures['p50']:>8.0f} {figures['p95']:>8.0f} {figures['queries']:>8}", flush=True)
            for statement in figures["slowest"]:
                print(f"    {float(statement['time']) * 1000:6.0f} ms  {statement['sql'][:SQL_SHOWN]}")
        print(
            f"PostgreSQL {server.version()}, Python {platform.python_version()}, {os.cpu_count()} CPU(s), "
            f"{args.requests} requests per period after {WARMUPS} warm-ups; "
            f"whole run {(time.perf_counter() - started) / 60:.1f} min including seeding"
        )


if __name__ == "__main__":
    main()
