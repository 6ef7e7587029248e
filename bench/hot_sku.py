"""Flash-sale benchmark: orders per second through POST /api/v1/orders/ when every client orders ONE shared
SKU (one stock row), against the same clients each ordering SKUs of its own (no two clients share a stock
row), plus an oversell check afterwards.

Run from the project root against a PostgreSQL server (by hand; make test never runs it):

    DATABASE_URL=postgres://... REDIS_URL=redis://... CONN_MAX_AGE=60 .venv/bin/python bench/hot_sku.py
    .venv/bin/python bench/hot_sku.py --seconds 8 --rounds 3 --clients 8 --workers 4 --lines 1
    .venv/bin/python bench/hot_sku.py --queries    # also each statement of one in-process hot order

Our bar: hot/distinct at least 0.5 (median over the rounds), and nothing oversold.

It reuses bench/api_ingest.py: a scratch database bench_hot_sku_<pid> on the same server (migrated, dropped
at the end, also on error, Ctrl-C and SIGTERM), one partner with an API token, one US location, gunicorn
sync workers serving bench/floor_app.py on a free port with throttling lifted, client processes on
http.client, and only 2xx answers within the measured seconds count (after a 1 s warm-up). The SKUs: one
hot SKU, --clients sets of their own (max(--lines, 4) SKUs each) and a hot one and a set for the in-process
measurements (outside the checks), each with 1,000,000 units on hand: far more than a run can sell, so every
order should be allocated.

The phases alternate hot, distinct, hot, distinct, ... (--rounds pairs), --clients processes each:

  hot       every order's first line is the hot SKU (quantity 1); with --lines N, the other N-1 lines are
            SKUs of the client's own set. Every intake locks the same stock row.
  distinct  --lines lines of the client's own SKUs. No two transactions ever want the same stock row.

--workers is the concurrency at the database: a sync worker runs one request, so one transaction, at a
time, and the hot row's lock only costs when several transactions want it at once. The default is 4 (with
2 CPUs here): twice the CPUs, so that while one transaction holds the row, others are there to queue on it,
as under a real flash sale; --clients 8 keeps every worker busy (gunicorn queues the rest). With
--workers 1 the two phases would be the same; with 2 at most one request waits.

While a phase runs, this process samples pg_stat_activity of the scratch database every 20 ms (through
its maintenance connection to another database): how many backends wait on a heavyweight lock (wait_event
'transactionid', 'tuple': a row another transaction holds; 'advisory'), run, or sit idle inside a
transaction (Python's turn in a gunicorn worker). Little's law turns the mean number of lock waiters into
the mean wait per order: waiters / orders per second. It also times, in process and one order at a time,
how long an intake holds the stock row: from the start of the statement that locks it to the end of the
commit. One over that is the most orders per second the hot row lets through, whatever the workers.

The oversell check reads, after the run, each stock level of the hot SKU and of the distinct SKUs: reserved
within on hand, reserved and on hand equal to the sums of their ledger (StockMovement) deltas, reserved
equal to the units of the live shipments' lines; and the 201 "allocated" answers equal the units reserved
(hot SKU: one unit per hot order; all SKUs: --lines units per order). It prints "oversold: 0" or the
offending rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import psycopg

from bench.api_ingest import (
    BENCH_ENVIRONMENT,
    INTAKE_PATH,
    STOCK_PER_SKU,
    WARMUP_SECONDS,
    ClientTally,
    Gunicorn,
    PhaseSpec,
    api_client,
    environment_line,
    order_body,
    post_order,
    request_for,
    run_client_processes,
    seed,
)
from bench.scratch import (
    close_django_connections,
    migrated_scratch_database,
    url_for_database,
)

BAR_RATIO = 0.5
MIN_SKUS_PER_CLIENT = 4
SAMPLE_INTERVAL_SECONDS = 0.02
HOLD_REQUESTS = 30
WAITS_SHOWN = 5
BUSY_STATES = ("active", "idle in transaction", "idle in transaction (aborted)")


# --- SKUs and request bodies ----------------------------------------------------------------


@dataclass(frozen=True)
class FlashSale:
    token: str
    hot_sku: str
    own_skus: list[list[str]]  # client n orders from own_skus[n]
    probe_skus: list[str]  # for the in-process measurements, outside the checks: the first plays the hot one

    @property
    def checked_skus(self) -> list[str]:
        return [self.hot_sku, *(code for codes in self.own_skus for code in codes)]


def seed_flash_sale(clients: int, lines: int) -> FlashSale:
    per_client = max(lines, MIN_SKUS_PER_CLIENT)
    token, codes = seed(1 + clients * per_client + 1 + per_client)
    own = [codes[1 + n * per_client : 1 + (n + 1) * per_client] for n in range(clients)]
    return FlashSale(token, codes[0], own, codes[1 + clients * per_client :])


def hot_request(spec: PhaseSpec, client: int, number: int, rng, floor_body: bytes) -> tuple[str, bytes, dict]:
    """spec.sku_codes is the hot SKU, then the client's own: the hot SKU is every order's first line."""
    hot, own = spec.sku_codes[0], spec.sku_codes[1:]
    tag = f"{spec.tag}-c{client}-{number}"
    # A unique email: the same customer, address and lines within a day would be held as a suspected duplicate.
    body = order_body(tag, f"{tag}@bench.example", [hot, *rng.sample(own, spec.lines - 1)])
    headers = {"Content-Type": "application/json", "Authorization": f"Token {spec.token}"}
    return INTAKE_PATH, json.dumps(body).encode(), headers


# --- pg_stat_activity sampling ----------------------------------------------------------------


@dataclass
class WaitSamples:
    """Per sample: backends of the scratch database waiting on a lock, running, idle in a transaction."""

    at: list[float] = field(default_factory=list)
    lock_waiting: list[int] = field(default_factory=list)
    active: list[int] = field(default_factory=list)
    idle_in_transaction: list[int] = field(default_factory=list)
    events: list[Counter] = field(default_factory=list)  # what the active backends wait on ("CPU": nothing)

    def window(self, seconds: float) -> WaitSamples:
        """The samples of the measured seconds: from the warm-up's end after the first busy backend."""
        busy = [t for t, a, i in zip(self.at, self.active, self.idle_in_transaction, strict=True) if a + i]
        if not busy:
            return WaitSamples()
        start = busy[0] + WARMUP_SECONDS
        kept = WaitSamples()
        for n, t in enumerate(self.at):
            if start <= t <= start + seconds:
                kept.at.append(t)
                kept.lock_waiting.append(self.lock_waiting[n])
                kept.active.append(self.active[n])
                kept.idle_in_transaction.append(self.idle_in_transaction[n])
                kept.events.append(self.events[n])
        return kept


class ActivitySampler(threading.Thread):
    def __init__(self, server_url: str, database: str) -> None:
        super().__init__(daemon=True)
        self.server_url, self.database = server_url, database
        self.samples = WaitSamples()
        self.stopping = threading.Event()

    def run(self) -> None:
        query = (
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'client backend'"
        )
        with psycopg.connect(url_for_database(self.server_url, "postgres"), autocommit=True) as watcher:
            while not self.stopping.is_set():
                rows = watcher.execute(query, [self.database]).fetchall()
                at = time.monotonic()
                active = [(kind, event) for state, kind, event in rows if state == "active"]
                self.samples.at.append(at)
                self.samples.active.append(len(active))
                self.samples.lock_waiting.append(sum(kind == "Lock" for kind, _ in active))
                self.samples.idle_in_transaction.append(sum(state in BUSY_STATES[1:] for state, _, _ in rows))
                self.samples.events.append(Counter(f"{kind}:{event}" if kind else "CPU" for kind, event in active))
                self.stopping.wait(SAMPLE_INTERVAL_SECONDS)

    def stop(self) -> WaitSamples:
        self.stopping.set()
        self.join()
        return self.samples


def describe_waits(samples: WaitSamples, per_second: float) -> str:
    if not samples.at:
        return "no samples"
    count = len(samples.at)
    waiting = statistics.fmean(samples.lock_waiting)
    events = Counter()
    for sample in samples.events:
        events.update(sample)
    active_total = sum(events.values()) or 1
    shown = ", ".join(f"{name} {n / active_total:.0%}" for name, n in events.most_common(WAITS_SHOWN))
    wait_ms = 1000 * waiting / per_second if per_second else float("nan")
    return (
        f"{count} samples: a lock waiter in {sum(n > 0 for n in samples.lock_waiting) / count:.0%}, "
        f"mean {waiting:.2f} waiting, {statistics.fmean(samples.active):.2f} active, "
        f"{statistics.fmean(samples.idle_in_transaction):.2f} idle in transaction; "
        f"lock wait per order ~{wait_ms:.1f} ms; active backends on: {shown}"
    )


# --- in-process: how long one intake holds the stock row -------------------------------------------


@dataclass
class HeldRow:
    held_ms: float  # from the start of the statement locking the stock row to the end of the commit
    after_lock: list[tuple[float, str]]  # (ms, statement) from the locking one on, COMMIT included


class StatementClock:
    """An execute_wrapper timing every statement, and the commit that ends the transaction."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.statements: list[tuple[float, float, str]] = []  # (start, end, sql)

    def __call__(self, execute, statement, params, many, context):
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            self.statements.append((started, time.perf_counter(), statement))

    def timed_commit(self, commit):
        def commit_and_note():
            started = time.perf_counter()
            try:
                return commit()
            finally:
                self.statements.append((started, time.perf_counter(), "COMMIT"))

        return commit_and_note


def is_stock_lock(statement: str) -> bool:
    from inventory.models import StockLevel

    return "FOR UPDATE" in statement.upper() and StockLevel._meta.db_table in statement


def hold_of_one_order(client, sku: str, number: int, lines_from: list[str], lines: int, rng) -> HeldRow:
    from django.db import connection

    clock = StatementClock(connection)
    body = order_body(f"hold-{number}", f"hold-{number}@bench.example", [sku, *rng.sample(lines_from, lines - 1)])
    connection.commit = clock.timed_commit(connection.commit)
    try:
        with connection.execute_wrapper(clock):
            response = post_order(client, body)
    finally:
        del connection.commit  # back to the class's method
    if response.status_code != 201:
        raise RuntimeError(f"in-process order answered {response.status_code}: {response.content[:300]!r}")
    first = next(n for n, (_, _, sql) in enumerate(clock.statements) if is_stock_lock(sql))
    commit = next(n for n, (_, _, sql) in enumerate(clock.statements) if sql == "COMMIT" and n > first)
    locked_from = clock.statements[first][0]
    return HeldRow(
        held_ms=(clock.statements[commit][1] - locked_from) * 1000,
        after_lock=[((end - start) * 1000, sql) for start, end, sql in clock.statements[first : commit + 1]],
    )


def measure_hold(sale: FlashSale, lines: int) -> tuple[float, HeldRow]:
    """Median stock-row hold over HOLD_REQUESTS orders one at a time on the probe SKU, and the median one."""
    import random

    from django.db import connection

    client, rng = api_client(sale.token), random.Random("hold")
    hot, own = sale.probe_skus[0], sale.probe_skus[1:]
    hold_of_one_order(client, hot, 0, own, lines, rng)  # first-request caches out of the way
    holds = sorted(
        (hold_of_one_order(client, hot, n, own, lines, rng) for n in range(1, HOLD_REQUESTS + 1)), key=lambda held: held.held_ms
    )
    connection.close()
    median = holds[len(holds) // 2]
    return statistics.median(held.held_ms for held in holds), median


def describe_statements_after_lock(held: HeldRow) -> str:
    shown = [f"statements from the stock row lock to the commit, one in-process order ({held.held_ms:.1f} ms held):"]
    shown += [f"  {number:3d} {ms:7.2f} ms  {' '.join(sql.split())[:200]}" for number, (ms, sql) in enumerate(held.after_lock, 1)]
    in_statements = sum(ms for ms, _ in held.after_lock)
    shown.append(
        f"  in statements {in_statements:.1f} ms; the other {held.held_ms - in_statements:.1f} ms is Python between them"
    )
    return "\n".join(shown)


# --- phases -------------------------------------------------------------------------------------


@dataclass
class Phase:
    kind: str  # "hot" or "distinct"
    seconds: float
    tally: ClientTally
    waits: WaitSamples

    @property
    def per_second(self) -> float:
        return self.tally.measured_ok / self.seconds

    @property
    def allocated(self) -> int:
        """201 "allocated" answers, warm-up and late ones included: what the database reserved for."""
        return self.tally.all_ok - sum(self.tally.not_allocated.values())


def run_phase(kind: str, round_number: int, args, port: int, sale: FlashSale, server_url: str, database: str) -> Phase:
    # kind "intake": the clients check that every 2xx answer is 201 "allocated".
    base = PhaseSpec("intake", port, sale.token, [], args.lines, args.seconds, tag=f"r{round_number}{kind[0]}")
    if kind == "hot":
        specs, build = [replace(base, sku_codes=[sale.hot_sku, *own]) for own in sale.own_skus], hot_request
    else:
        specs, build = [replace(base, sku_codes=own) for own in sale.own_skus], request_for
    sampler = ActivitySampler(server_url, database)
    sampler.start()
    try:
        tally = run_client_processes(specs, build)
    finally:
        samples = sampler.stop()
    return Phase(kind, args.seconds, tally, samples.window(args.seconds))


def print_phase(round_number: int, phase: Phase) -> None:
    tally = phase.tally
    print(
        f"round {round_number} {phase.kind:<8} {phase.per_second:8.1f}/s  ({tally.measured_ok} measured, {tally.all_ok} in all)"
        + (f"  non-2xx {dict(tally.failures)}" if tally.failures else "")
        + (f"  not allocated {dict(tally.not_allocated)}" if tally.not_allocated else ""),
        flush=True,
    )
    print(f"    waits: {describe_waits(phase.waits, phase.per_second)}", flush=True)
    for sample in tally.samples:
        print(f"    {sample}")


# --- oversell check ------------------------------------------------------------------------------


def oversell_report(sale: FlashSale, rounds: list[dict[str, Phase]], lines: int) -> str:
    from django.db.models import Sum

    from inventory.models import StockLevel, StockMovement
    from orders.models import ShipmentLine, ShipmentStatus

    checked = sale.checked_skus
    levels = list(StockLevel.objects.filter(sku__code__in=checked).select_related("sku", "location"))
    ledger = {
        (row["location_id"], row["sku_id"]): row
        for row in StockMovement.objects.filter(sku__code__in=checked)
        .values("location_id", "sku_id")
        .annotate(on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta"))
    }
    shipped = {
        (row["shipment__location_id"], row["order_line__sku_id"]): row["units"]
        for row in ShipmentLine.objects.filter(order_line__sku__code__in=checked)
        .exclude(shipment__status=ShipmentStatus.CANCELLED)
        .values("shipment__location_id", "order_line__sku_id")
        .annotate(units=Sum("quantity"))
    }
    offending = []
    for level in levels:
        key = (level.location_id, level.sku_id)
        books = ledger.get(key, {"on_hand": 0, "reserved": 0})
        planned = shipped.get(key, 0)
        if (
            level.reserved > level.on_hand
            or level.reserved != books["reserved"]
            or level.on_hand != books["on_hand"]
            or (level.reserved != planned)
        ):
            offending.append(
                f"  {level.sku.code}@{level.location.code}: on hand {level.on_hand}, reserved {level.reserved}; "
                f"ledger on hand {books['on_hand']}, reserved {books['reserved']}; shipment lines {planned}"
            )
    hot_level = next(level for level in levels if level.sku.code == sale.hot_sku)
    hot_orders = sum(phases["hot"].allocated for phases in rounds)
    all_orders = sum(phase.allocated for phases in rounds for phase in phases.values())
    all_reserved = sum(level.reserved for level in levels)
    counts_agree = hot_level.reserved == hot_orders and all_reserved == all_orders * lines
    shown = [
        f"oversell check ({len(levels)} stock levels: the hot SKU and {len(levels) - 1} distinct ones):",
        f"  hot SKU {sale.hot_sku}: {hot_orders} orders answered 201 allocated, {hot_level.reserved} units reserved "
        f"of {hot_level.on_hand} on hand",
        f"  all checked SKUs: {all_orders} orders x {lines} line(s) = {all_orders * lines} units answered allocated, "
        f"{all_reserved} reserved ({'equal' if counts_agree else 'NOT EQUAL'})",
    ]
    shown.append("oversold: 0" if not offending else f"oversold: {len(offending)} stock level(s) out of line:")
    shown.extend(offending)
    return "\n".join(shown)


# --- reporting -------------------------------------------------------------------------------------


def summarize(args, rounds: list[dict[str, Phase]], hold_ms: float, environment: str) -> str:
    ratios = [phases["hot"].per_second / phases["distinct"].per_second for phases in rounds]
    median_ratio = statistics.median(ratios)
    verdict = "met" if median_ratio >= BAR_RATIO else "NOT met"
    non_2xx = sum(sum(phase.tally.failures.values()) for phases in rounds for phase in phases.values())
    not_allocated = sum(sum(phase.tally.not_allocated.values()) for phases in rounds for phase in phases.values())
    hot = [phases["hot"] for phases in rounds]
    distinct = [phases["distinct"] for phases in rounds]

    def pooled(phases: list[Phase]) -> WaitSamples:
        pool = WaitSamples()
        for phase in phases:
            pool.at += phase.waits.at
            pool.lock_waiting += phase.waits.lock_waiting
            pool.active += phase.waits.active
            pool.idle_in_transaction += phase.waits.idle_in_transaction
            pool.events += phase.waits.events
        return pool

    return "\n".join(
        [
            (
                f"Hot SKU vs distinct SKUs ({args.lines}-line orders, {args.clients} clients, gunicorn {args.workers} sync "
                f"workers, {args.seconds:g} s per phase after {WARMUP_SECONDS:g} s warm-up)"
            ),
            "round    hot/s  distinct/s  hot/distinct",
            *(
                f"{n:>5} {phases['hot'].per_second:8.1f}  {phases['distinct'].per_second:10.1f}  {ratio:12.2f}"
                for n, (phases, ratio) in enumerate(zip(rounds, ratios, strict=True), 1)
            ),
            f"median hot/distinct {median_ratio:.2f} (bar {BAR_RATIO}: {verdict})",
            f"hot phases, pg_stat_activity every {SAMPLE_INTERVAL_SECONDS * 1000:.0f} ms: "
            + describe_waits(pooled(hot), statistics.fmean(p.per_second for p in hot)),
            "distinct phases, the same: " + describe_waits(pooled(distinct), statistics.fmean(p.per_second for p in distinct)),
            (
                f"stock row held per order, in process one at a time: median {hold_ms:.1f} ms from the locking statement "
                f"to the end of the commit; so at most ~{1000 / hold_ms:.0f} orders/s on one stock row"
            ),
            f"non-2xx answers: {non_2xx}; 2xx answers not 201/allocated: {not_allocated}",
            f"{environment}, load average {os.getloadavg()[0]:.1f} at the end, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        ]
    )


# --- command line -----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="client processes (default 8)")
    parser.add_argument(
        "--workers", type=int, default=4, help="gunicorn sync workers: transactions at once in the database (default 4)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="hot/distinct pairs (default 3)")
    parser.add_argument("--lines", type=int, default=1, help="lines per order, quantity 1 each (default 1)")
    parser.add_argument(
        "--queries", action="store_true", help="also print the statements one in-process order runs while it holds the stock row"
    )
    args = parser.parse_args()
    if min(args.clients, args.workers, args.rounds, args.lines) < 1 or args.seconds <= 0:
        parser.error("--seconds, --clients, --workers, --rounds and --lines must be positive")
    return args


def main() -> None:
    args = parse_args()
    gunicorn = None
    with migrated_scratch_database("bench_hot_sku", BENCH_ENVIRONMENT) as (server, server_url, database):
        try:
            sale = seed_flash_sale(args.clients, args.lines)
            print(
                f"hot SKU {sale.hot_sku} ({STOCK_PER_SKU:,} on hand), {args.clients} clients with "
                f"{len(sale.own_skus[0])} SKUs of their own each",
                flush=True,
            )
            hold_ms, median_hold = measure_hold(sale, args.lines)
            if args.queries:
                print(describe_statements_after_lock(median_hold), flush=True)
            environment = environment_line(server)
            close_django_connections()
            rounds = []
            with tempfile.TemporaryDirectory(prefix="bench_hot_sku_") as scratch_dir:
                gunicorn = Gunicorn(args.workers, Path(scratch_dir) / "gunicorn.log")
                gunicorn.wait_until_serving()
                for round_number in range(1, args.rounds + 1):
                    phases = {}
                    for kind in ("hot", "distinct"):
                        phases[kind] = run_phase(kind, round_number, args, gunicorn.port, sale, server_url, database)
                        print_phase(round_number, phases[kind])
                    ratio = phases["hot"].per_second / phases["distinct"].per_second
                    print(f"round {round_number} hot/distinct {ratio:.2f}", flush=True)
                    rounds.append(phases)
                gunicorn.stop()
            print()
            print(summarize(args, rounds, hold_ms, environment))
            print(oversell_report(sale, rounds, args.lines))
        finally:
            if gunicorn is not None:
                gunicorn.stop()


if __name__ == "__main__":
    main()
