"""SLA sweep benchmark: one run of exceptions.services.sla_sweep over a backlog, then idle runs, at 100,000 exceptions.

Run from the project root against a PostgreSQL server (the one `scripts/test-services.sh start` prints):

    DATABASE_URL=postgres://... .venv/bin/python bench/sla_sweep.py                 # 100,000 exceptions
    .venv/bin/python bench/sla_sweep.py --exceptions 10000 --idle-runs 50 --explain

A scratch database (bench_sla_<pid>) is migrated and loaded with set-based SQL (INSERT ... SELECT ... FROM
generate_series) and VACUUM ANALYZE; it is dropped at the end, also on error, Ctrl-C and SIGTERM. The database
DATABASE_URL names is never touched.

What it holds, all measured from one moment NOW that every run is given: the exceptions spread over the 18 seeded
types (so over their queues and policies), priorities P1-P4 and the owners of the pages benchmark (two thirds owned);
OPEN_SHARE of them open (open, in progress, waiting), the rest resolved or dismissed. Of the open ones: WARNING_DUE
past their warning time and not warned, ESCALATION_DUE past due and not escalated (most warned earlier), the rest
warned and not yet due, escalated earlier (a tenth of them never warned: they breached between two sweeps), or not
due yet. Waiting ones whose policy pauses the clock are not due, whatever their times.

Each run is timed with time.perf_counter (its transaction's commit included) and its queries counted with
CaptureQueriesContext: the first run (the backlog), a second run at the same moment, then --idle-runs runs with
nothing due (median and p95). --explain prints EXPLAIN (ANALYZE, BUFFERS) of the idle run's statements, each in a
transaction rolled back.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.pages import make_people, make_progress, progress_console
from bench.scratch import (
    ScratchServer,
    exit_on_sigterm,
    insert_select,
    migrate_quietly,
    quoted,
    require_postgres,
    setup_django_on,
    url_for_database,
)

EXCEPTIONS = 100_000
IDLE_RUNS = 50
OPEN_SHARE = 2 / 3
# Shares of the open exceptions, by where their SLA clock stands at NOW.
WARNING_DUE = 0.05
ESCALATION_DUE = 0.05
WARNED = 0.10
ESCALATED = 0.20
NEVER_WARNED_SHARE = 0.10  # of the escalated ones


def load(exceptions: int, now) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from exceptions.models import ExceptionType, FulfillmentException, SlaPolicy

    types, policies, users = quoted(ExceptionType), quoted(SlaPolicy), quoted(get_user_model())
    at = f"TIMESTAMPTZ '{now.isoformat()}'"
    minutes = "* interval '1 minute'"
    # Cumulative bounds of the open exceptions' clock states, drawn from one random number per row.
    warning, escalation = WARNING_DUE, WARNING_DUE + ESCALATION_DUE
    warned, escalated = escalation + WARNED, escalation + WARNED + ESCALATED
    source = f"""(
        SELECT base.*, t.default_queue_id, t.name AS type_name, sp.id AS policy_id,
               CASE WHEN base.r < {OPEN_SHARE} * 0.60 THEN 'open' WHEN base.r < {OPEN_SHARE} * 0.85 THEN 'in_progress'
                    WHEN base.r < {OPEN_SHARE} THEN 'waiting' WHEN base.r < 0.90 THEN 'resolved' ELSE 'dismissed' END AS status,
               CASE WHEN base.r >= {OPEN_SHARE} THEN 'closed' WHEN base.clock < {warning} THEN 'warning'
                    WHEN base.clock < {escalation} THEN 'escalation' WHEN base.clock < {warned} THEN 'warned'
                    WHEN base.clock < {escalated} THEN 'escalated' ELSE 'later' END AS clock_state
        FROM (
            SELECT g, ids.types[1 + mod(g, cardinality(ids.types))] AS type_id,
                   (ARRAY['P1', 'P2', 'P3', 'P4'])[1 + CAST(FLOOR(random() * 4) AS integer)] AS priority,
                   random() AS r, random() AS clock, random() AS spread, random() AS r_owner, ids.owners
            FROM generate_series(1, {exceptions}) g
            CROSS JOIN (
                SELECT (SELECT array_agg(id ORDER BY id) FROM {types}) AS types,
                       (SELECT array_agg(id ORDER BY id) FROM {users}
                        WHERE username = 'bench-coordinator' OR username LIKE 'owner-%%') AS owners
            ) ids
        ) base
        JOIN {types} t ON t.id = base.type_id
        LEFT JOIN {policies} sp ON sp.exception_type_id = t.id AND sp.priority = base.priority
    ) pick"""
    # Warning time and due time by clock state; closed ones lie in the past like the escalated ones.
    warn_at = f"""CASE pick.clock_state
        WHEN 'warning' THEN {at} - (1 + pick.spread * 60) {minutes}
        WHEN 'warned' THEN {at} - (1 + pick.spread * 60) {minutes}
        WHEN 'escalation' THEN {at} - (121 + pick.spread * 600) {minutes}
        WHEN 'later' THEN {at} + (1 + pick.spread * 1440) {minutes}
        ELSE {at} - (121 + pick.spread * 14400) {minutes} END"""
    due_at = f"""CASE pick.clock_state
        WHEN 'warning' THEN {at} + (1 + pick.spread * 600) {minutes}
        WHEN 'warned' THEN {at} + (1 + pick.spread * 600) {minutes}
        WHEN 'later' THEN {at} + (481 + pick.spread * 1440) {minutes}
        ELSE {at} - (1 + pick.spread * 600) {minutes} - CASE WHEN pick.clock_state = 'escalation' THEN interval '0'
             ELSE pick.spread * interval '10 days' END END"""
    escalated_before = "pick.clock_state IN ('escalated', 'closed')"
    warned_before = (
        f"pick.clock_state IN ('warned', 'escalation', 'closed') "
        f"OR (pick.clock_state = 'escalated' AND pick.r_owner >= {NEVER_WARNED_SHARE})"
    )
    closed = "pick.status IN ('resolved', 'dismissed')"
    detected = f"(({warn_at}) - interval '6 hours')"

    def exception_rows(cursor):
        cursor.execute("SELECT setseed(0.42)")
        insert_select(
            cursor,
            FulfillmentException,
            {
                "type_id": "pick.type_id",
                "dedupe_key": "'bench:' || pick.g",
                "summary": "pick.type_name || ' #' || pick.g",
                "status": "pick.status",
                "owner_id": (
                    "CASE WHEN pick.r_owner < 2.0 / 3 THEN pick.owners[1 + mod(pick.g * 7, cardinality(pick.owners))] END"
                ),
                "queue_id": "pick.default_queue_id",
                "priority": "pick.priority",
                "sla_policy_id": "pick.policy_id",
                "detected_at": detected,
                "first_response_due_at": f"{detected} + interval '1 hour'",
                "warn_at": warn_at,
                "due_at": due_at,
                "warned_at": f"CASE WHEN {warned_before} THEN {warn_at} END",
                "escalated": escalated_before,
                "escalated_at": f"CASE WHEN {escalated_before} THEN {due_at} END",
                "waiting_since": f"CASE WHEN pick.status = 'waiting' THEN {at} - pick.spread * interval '2 days' END",
                "resolved_at": f"CASE WHEN {closed} THEN {at} - pick.spread * interval '1 day' END",
                "resolution_action": f"CASE WHEN {closed} THEN 'resolve' ELSE '' END",
                "last_occurred_at": detected,
                "created_at": detected,
                "updated_at": detected,
            },
            source,
        )

    with make_progress() as progress:
        task = progress.add_task("loading", total=3)
        progress.update(task, description="loading people")
        make_people()
        progress.advance(task)
        progress.update(task, description=f"loading {exceptions:,} exceptions")
        with transaction.atomic(), connection.cursor() as cursor:
            exception_rows(cursor)
        progress.advance(task)
        progress.update(task, description="VACUUM ANALYZE")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        progress.advance(task)


def timed_sweep(now) -> tuple[dict, float, list[dict]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from exceptions.services import sla_sweep

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        result = sla_sweep(now=now)
        elapsed = time.perf_counter() - started
    return result, elapsed * 1000, list(captured.captured_queries)


def idle_runs(label: str, now, runs: int) -> list:
    idle = [timed_sweep(now) for _ in range(runs)]
    idle_ms = [elapsed for _, elapsed, _ in idle]
    idle_queries = {len(queries) for _, _, queries in idle}
    idle_sql_ms = [sum(float(query["time"]) for query in queries) * 1000 for _, _, queries in idle]
    busy = [result for result, _, _ in idle if result != {"warned": 0, "escalated": 0}]
    print(
        f"{label} ({runs}): median {statistics.median(idle_ms):.2f} ms, p95 {p95(idle_ms):.2f} ms "
        f"(in the database: median {statistics.median(idle_sql_ms):.2f} ms), "
        f"{'/'.join(str(q) for q in sorted(idle_queries))} queries{f'; {len(busy)} found work' if busy else ''}",
        flush=True,
    )
    return idle


def explain(statements: list[dict]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of each UPDATE and the "anything due" read, rolled back (EXPLAIN ANALYZE runs it)."""
    from django.db import connection, transaction

    sections = []
    for query in statements:
        if "UPDATE" not in query["sql"] and "IS NOT NULL" not in query["sql"]:
            continue
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = "\n".join("    " + row[0] for row in cursor.fetchall())
                raise Rollback
        except Rollback:
            pass
        sections.append(plan)
    return "\n\n".join(sections)


class Rollback(Exception):
    """Leaves a transaction.atomic block by rolling it back."""


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exceptions", type=int, default=EXCEPTIONS, help="exceptions to load (default %(default)s)")
    parser.add_argument("--idle-runs", type=int, default=IDLE_RUNS, help="timed runs with nothing due (default %(default)s)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the idle run's statements")
    args = parser.parse_args()
    if args.exceptions < 100 or args.idle_runs < 2:
        parser.error("--exceptions must be at least 100, --idle-runs at least 2")
    return args


def main() -> None:
    args = parse_args()
    exit_on_sigterm()
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    started = time.perf_counter()
    name = f"bench_sla_{os.getpid()}"
    with ScratchServer(server_url) as server:
        server.create(name)
        setup_django_on(url_for_database(server_url, name))
        progress_console.print(f"migrating scratch database {name}")
        migrate_quietly()
        from django.utils import timezone

        from exceptions.models import OPEN_STATUSES, FulfillmentException
        from exceptions.services import due_for_escalation, due_for_warning

        now = timezone.now()
        load(args.exceptions, now)
        total = FulfillmentException.objects.count()
        open_count = FulfillmentException.objects.filter(status__in=OPEN_STATUSES).count()
        warning_due, escalation_due = due_for_warning(now).count(), due_for_escalation(now).count()
        print(
            f"{total:,} exceptions, {open_count:,} open; due at NOW: {warning_due:,} a warning, {escalation_due:,} an escalation",
            flush=True,
        )

        first, first_ms, first_queries = timed_sweep(now)
        print(
            f"first run (the backlog): {first_ms:.0f} ms, {len(first_queries)} queries; "
            f"warned {first['warned']:,}, escalated {first['escalated']:,}",
            flush=True,
        )
        second, second_ms, second_queries = timed_sweep(now)
        nothing_left = second == {"warned": 0, "escalated": 0}
        print(
            f"second run: {'finds 0' if nothing_left else f'finds {second}'} ({second_ms:.1f} ms, {len(second_queries)} queries)",
            flush=True,
        )
        idle = idle_runs("idle runs, right after", now, args.idle_runs)
        # The backlog run left the old versions of the rows it changed in the sweep's indexes until a vacuum
        # removes them; autovacuum does that for the table soon after, this does it now.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {quoted(FulfillmentException)}")
        vacuumed = idle_runs("idle runs, after VACUUM", now, args.idle_runs)
        if args.explain:
            print("idle run right after the backlog, EXPLAIN (ANALYZE, BUFFERS):")
            print(explain(idle[-1][2]))
            print("idle run after VACUUM, EXPLAIN (ANALYZE, BUFFERS):")
            print(explain(vacuumed[-1][2]))
        print(
            f"PostgreSQL {server.version()}, Python {platform.python_version()}, {os.cpu_count()} CPU(s); "
            f"whole run {time.perf_counter() - started:.0f} s including loading"
        )


if __name__ == "__main__":
    main()
