"""API intake benchmark: orders per second through POST /api/v1/orders/ under gunicorn, as a share
of a "floor" (a bare Django view that INSERTs one row into the same database), plus database
commits and queries per order.

Run from the project root against a PostgreSQL server (the one `cat /tmp/testenv` names):

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/api_ingest.py
    .venv/bin/python bench/api_ingest.py --seconds 10 --clients 4 --workers 2 --rounds 3 --lines 3
    .venv/bin/python bench/api_ingest.py --profile     # also cProfile 50 in-process intake requests
    .venv/bin/python bench/api_ingest.py --queries --in-process-only   # each statement of one request; no gunicorn
    .venv/bin/python bench/api_ingest.py --cpu --in-process-only       # CPU per request: Python and PostgreSQL
    .venv/bin/python bench/api_ingest.py --replay --in-process-only    # PostgreSQL CPU of each statement, new backend vs used
    .venv/bin/python bench/api_ingest.py --api-floor                   # a third phase: the API layers alone (bench/floor_app.py)
    .venv/bin/python bench/api_ingest.py --batch 50                    # also POST /api/v1/orders/batch/, 50 orders a request

Our bar: at least 0.35 of the floor for a 3-line order with reservation, one database commit
per order, and the same number of queries for a 1-line and a 50-line order.

The database DATABASE_URL names is never touched: the script creates bench_api_ingest_<pid> on the
same server, migrates it, seeds one partner (with an API token), one US location and 60 SKUs at
12.50 with ample stock (so every order allocates and reserves at that one site), and creates the
bench-only table bench_floor. It is dropped at the end, also on error, Ctrl-C and SIGTERM.

gunicorn (sync workers) serves bench/floor_app.py on a free 127.0.0.1 port: the project's settings
and URLs plus POST /bench/floor/. Throttling is lifted (PARTNER_THROTTLE_RATE), DEBUG is off, and so are the
HTTPS redirect and secure-only cookies (it speaks plain HTTP).

The phases alternate intake, floor, intake, floor, ... (--rounds pairs). In each, --clients
processes send back to back, each on its own http.client connection: for the intake, distinct
orders (unique external_id and customer email, --lines lines of random SKUs, the partner's token);
for the floor, one fixed JSON body. The first second is warm-up; then only 2xx answers that arrive
within --seconds count. Anything else is counted and shown; the intake must answer 201 "allocated".

Commits per order: xact_commit of the scratch database in pg_stat_database before and after each
phase, divided by the 2xx answers of the phase (warm-up included). PostgreSQL counts every
transaction there: read-only autocommit statements too (the token lookup, for one), and with
CONN_MAX_AGE 0 two per new connection (backend start-up, Django's time zone set_config); the
floor shows that overhead, and autovacuum adds a little. So the script also counts in-process,
for one request, which transactions wrote. Queries per order come from Django's
CaptureQueriesContext around one in-process request (django.test.Client, the whole middleware
and DRF stack) for a 1-line, a --lines-line and a 50-line order; like assertNumQueries it counts
Django's BEGIN/COMMIT markers and SAVEPOINTs, and the script shows how many of each.

--api-floor adds, in every round, a phase against POST /bench/api-floor/: the API's token
authentication, throttle, parser and the intake's validation, then the floor's one INSERT. The
summary then also shows api-floor/floor (what the API layers leave of the floor) and
intake/api-floor (what the order services leave of that).

--batch N adds, in every round after the intake, a phase against POST /api/v1/orders/batch/: each
client sends batches of N distinct orders (the intake's bodies: unique external ids and customers,
--lines lines each), and the figure is orders created per second (the 201 results of the batches
that answer 200 within the measured seconds). The round then shows batch/intake and the summary its
median, against the bar of BATCH_BAR_RATIO times the single intake on the same run.

--cpu splits one request's CPU between this process (Django, DRF, the services, psycopg) and the
PostgreSQL backend serving it (/proc/<pid>/schedstat, so the server must run on this machine),
each request on a new connection as under gunicorn with CONN_MAX_AGE 0, and the intake also on a
reused connection: the difference is what a new backend spends learning the schema (catalogue
caches, first plans) for the intake's tables. It leaves out gunicorn, HTTP and the load clients.
It also measures the api-floor view the same way and splits the intake's CPU above the floor
into the API layers' share and the order services' share.

--replay sends the statements of one intake (captured in a transaction that is rolled back)
again, one by one, on 20 new backends and on each one a second time, and shows the backend
CPU of each statement with the tables it names.

CONN_MAX_AGE (from the environment; the settings' default is 60, kept connections) moves the floor
far more than the intake: with 0, every request of both phases opens a new PostgreSQL connection,
which is most of the floor's cost. Quote the ratio with the CONN_MAX_AGE the summary prints; the
intake's bar (intake/api-floor) is for 60.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import multiprocessing
import os
import platform
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.scratch import (
    LOOPBACK_ENVIRONMENT,
    ScratchServer,
    backend_cpu_ms,
    close_django_connections,
    free_port,
    migrated_scratch_database,
)

BAR_RATIO = 0.35
SKU_COUNT = 60
STOCK_PER_SKU = 1_000_000
UNIT_PRICE = "12.50"
WIDE_ORDER_LINES = 50
WARMUP_SECONDS = 1.0
PROFILE_REQUESTS = 50
CPU_REQUESTS = 200
INTAKE_PATH = "/api/v1/orders/"
BATCH_PATH = "/api/v1/orders/batch/"
BATCH_BAR_RATIO = 3.0
FLOOR_PATH = "/bench/floor/"
API_FLOOR_PATH = "/bench/api-floor/"
FLOOR_TABLE_SQL = (
    "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
# The environment both gunicorn and the in-process requests run with.
BENCH_ENVIRONMENT = {**LOOPBACK_ENVIRONMENT, "PARTNER_THROTTLE_RATE": "1000000/min"}
SAMPLES_SHOWN = 3
SAVEPOINT_PREFIXES = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
# PostgreSQL 15+ (PGSTAT_IDLE_INTERVAL is 10 s), with a margin.
STATS_IDLE_FLUSH_SECONDS = 11.0


# --- scratch database statistics -------------------------------------------------------------


class StatsServer(ScratchServer):
    """The scratch server, also reading pg_stat_database and pg_stat_activity through its maintenance connection."""

    def committed_transactions(self, database: str) -> int:
        return self.admin.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [database]).fetchone()[0]

    def connected_backends(self, database: str) -> int:
        return self.admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database]).fetchone()[0]

    def settled_committed_transactions(self, database: str) -> int:
        """xact_commit once every backend has reported.

        A backend reports its counts when it exits (CONN_MAX_AGE 0: after every request), or when idle, but
        at most once a second and otherwise only after STATS_IDLE_FLUSH_SECONDS; so persistent connections are waited for.
        """
        started = time.monotonic()
        previous = self.committed_transactions(database)
        while True:
            time.sleep(0.5)
            current = self.committed_transactions(database)
            waited_out_idle_flush = time.monotonic() - started > STATS_IDLE_FLUSH_SECONDS
            if current == previous and (waited_out_idle_flush or not self.connected_backends(database)):
                return current
            previous = current


# --- seeding --------------------------------------------------------------------------------


def _median_of_ratios(numerators, denominators) -> float:
    return statistics.median(n.per_second / d.per_second for n, d in zip(numerators, denominators, strict=True))


def seed(sku_count: int = SKU_COUNT) -> tuple[str, list[str]]:
    """One partner, one US location with ample stock of each of sku_count SKUs; gives (API token, SKU codes)."""
    from django.db import connection

    from core.actors import Actor
    from inventory.models import Location, Sku
    from inventory.services import stock_receive
    from orders.services.partners import partner_ensure

    actor = Actor.job("bench")
    location = Location.objects.create(code="BENCH-US", name="Bench site", country="US", ships_to=["US"], active=True)
    skus = Sku.objects.bulk_create(
        Sku(code=f"BENCH-{n:03d}", name=f"Bench product {n}", unit_price=Decimal(UNIT_PRICE), case_pack=12)
        for n in range(1, sku_count + 1)
    )
    for sku in skus:
        stock_receive(location_id=location.pk, sku_id=sku.pk, quantity=STOCK_PER_SKU, actor=actor, reference="bench")
    _, token, _ = partner_ensure(code="bench", name="Bench storefront")
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_TABLE_SQL)
    return token, [sku.code for sku in skus]


# --- request bodies -------------------------------------------------------------------------


def order_body(external_id: str, email: str, sku_codes: list[str]) -> dict:
    return {
        "external_id": external_id,
        "placed_at": datetime.now(UTC).isoformat(),
        "currency": "USD",
        "service_level": "standard",
        "customer": {"name": "Ada Lovelace", "email": email, "tier": "standard"},
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Main St",
            "line2": "",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "lines": [{"sku": code, "quantity": 1, "uom": "each", "unit_price": UNIT_PRICE} for code in sku_codes],
    }


def distinct_order_body(tag: str, number: int, sku_codes: list[str], lines: int, rng: random.Random) -> dict:
    # A unique email too: the same customer, address and lines within a day would be held as a suspected duplicate.
    return order_body(f"{tag}-{number}", f"{tag}-{number}@bench.example", rng.sample(sku_codes, lines))


# --- load clients (separate processes) ------------------------------------------------------


@dataclass(frozen=True)
class PhaseSpec:
    kind: str  # "intake", "batch", "api-floor" or "floor"
    port: int
    token: str
    sku_codes: list[str]
    lines: int
    seconds: float
    tag: str  # makes external ids unique across phases
    batch: int = 0  # orders per batch request


@dataclass
class ClientTally:
    measured_ok: int = 0
    all_ok: int = 0  # warm-up and late answers included: what the database did work for (batch: orders created)
    failures: Counter = field(default_factory=Counter)  # non-2xx status (or exception name) -> count
    not_allocated: Counter = field(default_factory=Counter)  # 2xx intake answers whose order is not "allocated"
    samples: list[str] = field(default_factory=list)

    def merge(self, other: ClientTally) -> None:
        self.measured_ok += other.measured_ok
        self.all_ok += other.all_ok
        self.failures.update(other.failures)
        self.not_allocated.update(other.not_allocated)
        self.samples.extend(other.samples[: max(0, SAMPLES_SHOWN - len(self.samples))])

    def note_sample(self, text: str) -> None:
        if len(self.samples) < SAMPLES_SHOWN:
            self.samples.append(text[:500])


def request_for(spec: PhaseSpec, client: int, number: int, rng: random.Random, floor_body: bytes) -> tuple[str, bytes, dict]:
    if spec.kind == "floor":
        return FLOOR_PATH, floor_body, {"Content-Type": "application/json"}
    headers = {"Content-Type": "application/json", "Authorization": f"Token {spec.token}"}
    if spec.kind == "batch":
        first = (number - 1) * spec.batch
        orders = [
            {"order": distinct_order_body(f"{spec.tag}-c{client}", first + n, spec.sku_codes, spec.lines, rng)}
            for n in range(1, spec.batch + 1)
        ]
        return BATCH_PATH, json.dumps({"orders": orders}).encode(), headers
    body = distinct_order_body(f"{spec.tag}-c{client}", number, spec.sku_codes, spec.lines, rng)
    return (INTAKE_PATH if spec.kind == "intake" else API_FLOOR_PATH), json.dumps(body).encode(), headers


def judge(spec: PhaseSpec, status: int, payload: bytes, tally: ClientTally) -> int:
    """What an answer counts for: 1 for a 2xx answer, for a batch the orders it created, else 0; anything
    unexpected is tallied and sampled."""
    if not 200 <= status < 300:
        tally.failures[str(status)] += 1
        tally.note_sample(f"{spec.kind} {status}: {payload.decode(errors='replace')}")
        return 0
    if spec.kind == "batch":
        return judge_batch(payload, tally)
    if spec.kind == "intake":
        order_status = json.loads(payload).get("status")
        if status != 201 or order_status != "allocated":
            tally.not_allocated[f"{status}/{order_status}"] += 1
            tally.note_sample(f"intake {status} status={order_status}: {payload.decode(errors='replace')}")
    return 1


def judge_batch(payload: bytes, tally: ClientTally) -> int:
    created = 0
    for result in json.loads(payload)["results"]:
        if result["status"] != 201:
            tally.failures[f"item {result['status']}"] += 1
            tally.note_sample(f"batch item {result['index']}: {json.dumps(result)}")
            continue
        created += 1
        order_status = result["order"].get("status")
        if order_status != "allocated":
            tally.not_allocated[f"201/{order_status}"] += 1
            tally.note_sample(f"batch item {result['index']} status={order_status}: {json.dumps(result)}")
    return created


def run_client(spec: PhaseSpec, client: int, start_together, results, build_request=request_for) -> None:
    rng = random.Random(f"{spec.tag}-{client}")
    floor_body = json.dumps(order_body("floor", "floor@bench.example", spec.sku_codes[: spec.lines])).encode()
    # gunicorn's sync workers close the connection after every answer; http.client then reconnects by itself.
    connection = http.client.HTTPConnection("127.0.0.1", spec.port, timeout=60)
    tally = ClientTally()
    start_together.wait()
    measure_from = time.monotonic() + WARMUP_SECONDS
    stop_at = measure_from + spec.seconds
    number = 0
    while time.monotonic() < stop_at:
        number += 1
        path, body, headers = build_request(spec, client, number, rng, floor_body)
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            status, payload = response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            tally.failures[type(error).__name__] += 1
            tally.note_sample(f"{spec.kind} {type(error).__name__}: {error}")
            connection.close()
            continue
        counted = judge(spec, status, payload, tally)
        tally.all_ok += counted
        if measure_from <= time.monotonic() <= stop_at:
            tally.measured_ok += counted
    connection.close()
    results.put(tally)


def run_clients(spec: PhaseSpec, clients: int) -> ClientTally:
    return run_client_processes([spec] * clients)


def run_client_processes(specs: list[PhaseSpec], build_request=request_for) -> ClientTally:
    """One client process per spec (client n gets specs[n]), started together; their tallies added up.

    build_request(spec, client, number, rng, floor_body) gives (path, body, headers); it must be a
    module-level function, as the processes are spawned.
    """
    # spawn, not fork: the parent holds Django and PostgreSQL connections a forked child must not share.
    context = multiprocessing.get_context("spawn")
    start_together, results = context.Barrier(len(specs)), context.Queue()
    processes = [
        context.Process(target=run_client, args=(spec, n, start_together, results, build_request), daemon=True)
        for n, spec in enumerate(specs)
    ]
    for process in processes:
        process.start()
    try:
        total = ClientTally()
        for _ in processes:
            total.merge(results.get(timeout=max(spec.seconds for spec in specs) + WARMUP_SECONDS + 120))
        for process in processes:
            process.join()
        return total
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()


# --- gunicorn ---------------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "bench.floor_app:application",
            "--chdir",
            str(PROJECT_ROOT),
            "--worker-class",
            "sync",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ]
        self.log = open(log_path, "wb")  # noqa: SIM115 - gunicorn writes to it until stop() closes it
        # os.environ already holds the scratch DATABASE_URL and BENCH_ENVIRONMENT.
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)

    def wait_until_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, characters: int = 3000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-characters:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # graceful: the master stops its workers
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# --- in-process measurements ----------------------------------------------------------------


class TransactionTally:
    """Counts a request's database transactions: autocommit statements and committed atomic blocks, and which wrote."""

    WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE")

    def __init__(self, connection) -> None:
        self.connection = connection
        self.autocommit_statements = self.autocommit_writes = 0
        self.commits = self.writing_commits = 0
        self.block_wrote = False

    def is_write(self, statement: str) -> bool:
        text = statement.lstrip().upper()
        return text.startswith(self.WRITE_PREFIXES) or " FOR UPDATE" in text

    def __call__(self, execute, statement, params, many, context):
        if self.connection.in_atomic_block:
            self.block_wrote |= self.is_write(statement)
        else:
            self.autocommit_statements += 1
            self.autocommit_writes += self.is_write(statement)
        return execute(statement, params, many, context)

    def count_commit(self, commit):
        def counted_commit():
            self.commits += 1
            self.writing_commits += self.block_wrote
            self.block_wrote = False
            return commit()

        return counted_commit

    @property
    def transactions(self) -> int:
        return self.autocommit_statements + self.commits

    @property
    def writing_transactions(self) -> int:
        return self.autocommit_writes + self.writing_commits


@dataclass
class RequestCost:
    lines: int
    status: str
    queries: int  # as CaptureQueriesContext (and assertNumQueries) count them
    transaction_markers: int  # Django's BEGIN/COMMIT entries among them
    savepoint_statements: int  # SAVEPOINT / RELEASE SAVEPOINT among them
    transactions: int
    writing_transactions: int

    @property
    def other_statements(self) -> int:
        return self.queries - self.transaction_markers - self.savepoint_statements


def api_client(token: str):
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")


def post_order(client, body: dict):
    return client.post(INTAKE_PATH, data=json.dumps(body), content_type="application/json")


def measure_request(token: str, sku_codes: list[str], lines: int, tag: str) -> RequestCost:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client, rng = api_client(token), random.Random(tag)
    post_order(client, distinct_order_body(f"{tag}-warm", 0, sku_codes, lines, rng))  # first-request caches out of the way
    body = distinct_order_body(tag, 1, sku_codes, lines, rng)
    tally = TransactionTally(connection)
    connection.commit = tally.count_commit(connection.commit)
    try:
        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(tally):
            response = post_order(client, body)
    finally:
        del connection.commit  # back to the class's method
    statements = [query["sql"].lstrip().upper() for query in captured.captured_queries]
    return RequestCost(
        lines=lines,
        status=f"{response.status_code}/{response.json().get('status')}",
        queries=len(statements),
        transaction_markers=sum(text in ("BEGIN", "COMMIT", "ROLLBACK") for text in statements),
        savepoint_statements=sum(text.startswith(SAVEPOINT_PREFIXES) for text in statements),
        transactions=tally.transactions,
        writing_transactions=tally.writing_transactions,
    )


@dataclass
class RequestTime:
    wall_ms: float
    database_ms: float  # inside cursor.execute: round trip, server time and the driver's own work


class DatabaseTimer:
    """An execute_wrapper that adds up the time spent inside cursor.execute."""

    def __init__(self) -> None:
        self.total = 0.0

    def __call__(self, execute, statement, params, many, context):
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            self.total += time.perf_counter() - started


def time_requests(token: str, sku_codes: list[str], lines: int, count: int = 30) -> RequestTime:
    """Median time of one in-process intake request, one at a time, and how much of it is spent in database calls."""
    from django.db import connection

    client, rng = api_client(token), random.Random("timing")
    walls, database = [], []
    for number in range(count):
        database_seconds = DatabaseTimer()
        started = time.perf_counter()
        with connection.execute_wrapper(database_seconds):
            post_order(client, distinct_order_body("timing", number, sku_codes, lines, rng))
        walls.append(time.perf_counter() - started)
        database.append(database_seconds.total)
    return RequestTime(statistics.median(walls) * 1000, statistics.median(database) * 1000)


def profile_intake(token: str, sku_codes: list[str], lines: int) -> str:
    client, rng = api_client(token), random.Random("profile")
    bodies = [distinct_order_body("profile", n, sku_codes, lines, rng) for n in range(PROFILE_REQUESTS + 1)]
    post_order(client, bodies.pop())
    profiler = cProfile.Profile()
    profiler.enable()
    for body in bodies:
        post_order(client, body)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write(f"cProfile of {PROFILE_REQUESTS} in-process {lines}-line intake requests, by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(30)
    out.write("by own time:\n")
    stats.sort_stats("tottime").print_stats(15)
    return out.getvalue()


def statements_of_one_request(token: str, sku_codes: list[str], lines: int) -> str:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client, rng = api_client(token), random.Random("statements")
    with CaptureQueriesContext(connection) as captured:
        post_order(client, distinct_order_body("statements", 1, sku_codes, lines, rng))
    shown = [
        f"{number:3d} {query['time']:>6}s  {query['sql'][:160]}" for number, query in enumerate(captured.captured_queries, 1)
    ]
    return f"statements of one in-process {lines}-line intake request:\n" + "\n".join(shown)


@dataclass
class CpuCost:
    kind: str
    python_ms: float  # this process: Django, DRF, the services and psycopg
    database_ms: float  # the PostgreSQL backend that served the request, its start-up included

    @property
    def total_ms(self) -> float:
        return self.python_ms + self.database_ms


def cpu_per_request(
    kind: str, token: str, sku_codes: list[str], lines: int, *, new_connection: bool = True, count: int = CPU_REQUESTS
) -> CpuCost | None:
    """Median CPU of one request, in process: this process's CPU time plus that of the PostgreSQL backend
    serving it. With new_connection, each request starts its own backend (as under gunicorn with
    CONN_MAX_AGE 0) and its CPU is read before it closes. None when the server is not on this machine."""
    from django.db import connection

    client, rng = api_client(token), random.Random(f"cpu-{kind}")
    floor_body = json.dumps(order_body("floor", "floor@bench.example", sku_codes[:lines]))
    python, database = [], []
    connection.close()
    for number in range(count):
        if new_connection:
            connection.close()  # the request connects, as it does under gunicorn
            backend_before = 0.0
        else:
            connection.ensure_connection()
            backend_before = backend_cpu_ms(connection.connection.info.backend_pid)
        started = time.process_time()
        if kind == "intake":
            response = post_order(client, distinct_order_body(f"cpu-{time.monotonic_ns()}", number, sku_codes, lines, rng))
        elif kind == "api-floor":
            body = json.dumps(distinct_order_body(f"cpu-{time.monotonic_ns()}", number, sku_codes, lines, rng))
            response = client.post(API_FLOOR_PATH, data=body, content_type="application/json")
        else:
            response = client.post(FLOOR_PATH, data=floor_body, content_type="application/json")
        python.append((time.process_time() - started) * 1000)
        if response.status_code != 201:
            raise RuntimeError(f"{kind} answered {response.status_code}: {response.content[:300]!r}")
        used = backend_cpu_ms(connection.connection.info.backend_pid)
        if used is None or backend_before is None:
            return None
        database.append(used - backend_before)
    connection.close()
    label = kind if new_connection else f"{kind}, reused connection"
    return CpuCost(label, statistics.median(python), statistics.median(database))


def cpu_report(args, token: str, sku_codes: list[str]) -> str:
    import bench.floor_app  # noqa: F401  (its URLconf adds the floor view next to the API, for the test client too)

    costs = []
    for _ in range(2):  # interleaved, as the machine's speed drifts
        for kind, new_connection in (("intake", True), ("api-floor", True), ("floor", True), ("intake", False)):
            cost = cpu_per_request(kind, token, sku_codes, args.lines, new_connection=new_connection)
            if cost is None:
                return "CPU per request: the PostgreSQL server is not on this machine (no /proc/<backend pid>), so not measured"
            costs.append(cost)
    shown = [
        f"CPU per request in process, each on a new PostgreSQL connection unless said (median of {CPU_REQUESTS}):",
        *(
            f"  {c.kind:<26} {c.python_ms:6.2f} ms Python + {c.database_ms:6.2f} ms PostgreSQL = {c.total_ms:6.2f} ms"
            for c in costs
        ),
    ]
    intake, api_floor, floor = (
        statistics.median(c.total_ms for c in costs if c.kind == kind) for kind in ("intake", "api-floor", "floor")
    )
    shown.append(
        f"  floor/intake CPU {floor / intake:.2f} (new connections); gunicorn, HTTP, the load clients, forking and ending "
        "a backend add about the same to both under load, which is why the throughput ratio is higher"
    )
    shown.append(
        f"  of the intake's {intake - floor:.1f} ms above the floor: {api_floor - floor:.1f} ms the API layers (token, throttle, "
        f"parsing, validation: api-floor minus floor), {intake - api_floor:.1f} ms the order services and the answer"
    )
    return "\n".join(shown)


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", *SAVEPOINT_PREFIXES)
REPLAYS = 20
TABLE_NAMED = re.compile(r'(?:FROM|INTO|UPDATE|JOIN)\s+"(\w+)"', re.IGNORECASE)


class _RolledBack(Exception):
    pass


def statements_rolled_back(token: str, sku_codes: list[str], lines: int) -> list[str]:
    """The statements of one in-process intake request, as sent, in a transaction that is then rolled back
    (so they can be sent again); without transaction control."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    client, rng = api_client(token), random.Random("replay")
    try:
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            response = post_order(client, distinct_order_body("replay", 1, sku_codes, lines, rng))
            if response.status_code != 201:
                raise RuntimeError(f"intake answered {response.status_code}: {response.content[:300]!r}")
            raise _RolledBack
    except _RolledBack:
        pass
    return [
        query["sql"] for query in captured.captured_queries if not query["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]


def replay_report(token: str, sku_codes: list[str], lines: int) -> str:
    """PostgreSQL CPU of each statement of one intake, sent again on new backends and on a used one.

    Each replay runs the statements in a transaction of its own and rolls it back; the backend's
    start-up (measured from after a first SELECT 1) and the commit are left out. A new backend has
    to read the catalogue for every table and index a statement touches and plan it for the first
    time; a used one has all of that cached.
    """
    import psycopg
    from django.db import connection

    statements = statements_rolled_back(token, sku_codes, lines)
    parameters = {
        k: v for k, v in connection.get_connection_params().items() if k in ("dbname", "user", "password", "host", "port")
    }
    connection.close()

    def replay(on) -> list[float]:
        pid = on.info.backend_pid
        costs = []
        on.execute("BEGIN")
        for statement in statements:
            before = backend_cpu_ms(pid)
            on.execute(statement)
            costs.append(backend_cpu_ms(pid) - before)
        on.execute("ROLLBACK")
        return costs

    fresh, used = [], []
    for _ in range(REPLAYS):
        with psycopg.connect(**parameters, autocommit=True) as backend:
            if backend_cpu_ms(backend.info.backend_pid) is None:
                return "statement replay: the PostgreSQL server is not on this machine (no /proc/<backend pid>), so not measured"
            backend.execute("SELECT 1")
            fresh.append(replay(backend))
            used.append(replay(backend))
    new_ms = [statistics.median(run[n] for run in fresh) for n in range(len(statements))]
    used_ms = [statistics.median(run[n] for run in used) for n in range(len(statements))]
    shown = [
        f"PostgreSQL CPU of one {lines}-line intake's statements, sent again "
        f"(median of {REPLAYS}; start-up and commit left out):",
        "   new backend  used backend  statement (tables)",
    ]
    for statement, new, old in zip(statements, new_ms, used_ms, strict=True):
        tables = ", ".join(dict.fromkeys(TABLE_NAMED.findall(statement))) or "-"
        shown.append(f"  {new:8.2f} ms  {old:8.2f} ms    {statement.split(None, 1)[0]:<6} {tables}"[:150])
    touched = {table for statement in statements for table in TABLE_NAMED.findall(statement)}
    shown.append(
        f"  {sum(new_ms):8.2f} ms  {sum(used_ms):8.2f} ms    in all: {len(statements)} statements on {len(touched)} tables"
    )
    return "\n".join(shown)


def measure_in_process(args, token: str, sku_codes: list[str]) -> tuple[list[RequestCost], RequestTime]:
    costs = [measure_request(token, sku_codes, lines, f"cost{lines}") for lines in sorted({1, args.lines, WIDE_ORDER_LINES})]
    for cost in costs:
        print(
            f"in-process {cost.lines}-line order: {cost.status}, {cost.queries} queries ({cost.transaction_markers} "
            f"BEGIN/COMMIT, {cost.savepoint_statements} savepoint, {cost.other_statements} other), "
            f"{cost.transactions} transactions ({cost.writing_transactions} writing)",
            flush=True,
        )
    timing = time_requests(token, sku_codes, args.lines)
    print(
        f"in-process {args.lines}-line order, one at a time: {timing.wall_ms:.1f} ms median, "
        f"{timing.database_ms:.1f} ms of it in database calls",
        flush=True,
    )
    if args.queries:
        print(statements_of_one_request(token, sku_codes, args.lines), flush=True)
    if args.profile:
        print(profile_intake(token, sku_codes, args.lines), flush=True)
    if args.cpu:
        print(cpu_report(args, token, sku_codes), flush=True)
    if args.replay:
        print(replay_report(token, sku_codes, args.lines), flush=True)
    return costs, timing


# --- phases and reporting ---------------------------------------------------------------------


@dataclass
class PhaseResult:
    kind: str
    seconds: float
    tally: ClientTally
    commits: int

    @property
    def per_second(self) -> float:
        return self.tally.measured_ok / self.seconds

    @property
    def commits_per_answer(self) -> float:
        return self.commits / self.tally.all_ok if self.tally.all_ok else float("nan")


def run_phase(kind: str, round_number: int, args, port: int, token: str, sku_codes: list[str]) -> ClientTally:
    spec = PhaseSpec(kind, port, token, sku_codes, args.lines, args.seconds, tag=f"r{round_number}{kind[0]}", batch=args.batch)
    return run_clients(spec, args.clients)


def print_phase(round_number: int, result: PhaseResult) -> None:
    tally = result.tally
    print(
        f"round {round_number} {result.kind:<9} {result.per_second:8.1f}/s  "
        f"({tally.measured_ok} measured, {tally.all_ok} in all, {result.commits_per_answer:.2f} commits each)"
        + (f"  non-2xx {dict(tally.failures)}" if tally.failures else "")
        + (f"  not allocated {dict(tally.not_allocated)}" if tally.not_allocated else ""),
        flush=True,
    )
    for sample in tally.samples:
        print(f"    {sample}")


def run_rounds(
    args, server: StatsServer, database: str, port: int, token: str, sku_codes: list[str]
) -> list[dict[str, PhaseResult]]:
    """intake, floor, intake, floor, ... (with --api-floor: intake, api-floor, floor, ...; with --batch a batch
    phase after each intake); each phase's commits are the change in xact_commit across it."""
    rounds = []
    committed = server.settled_committed_transactions(database)
    kinds = ("intake", *(("batch",) if args.batch else ()), *(("api-floor",) if args.api_floor else ()), "floor")
    for round_number in range(1, args.rounds + 1):
        phases = {}
        for kind in kinds:
            tally = run_phase(kind, round_number, args, port, token, sku_codes)
            committed_after = server.settled_committed_transactions(database)
            result = PhaseResult(kind, args.seconds, tally, committed_after - committed)
            committed = committed_after
            print_phase(round_number, result)
            phases[kind] = result
            if kind == "batch":
                ratio = result.per_second / phases["intake"].per_second
                print(f"round {round_number} batch orders/s {result.per_second:.1f}, batch/intake {ratio:.2f}", flush=True)
        rounds.append(phases)
    return rounds


def summarize(args, rounds: list[dict[str, PhaseResult]], costs: list[RequestCost], timing: RequestTime, environment: str) -> str:
    ratios = [phases["intake"].per_second / phases["floor"].per_second for phases in rounds]
    median_ratio = statistics.median(ratios)
    intakes, floors = [phases["intake"] for phases in rounds], [phases["floor"] for phases in rounds]
    api_floors = [phases["api-floor"] for phases in rounds if "api-floor" in phases]
    non_2xx = sum(sum(phase.tally.failures.values()) for phases in rounds for phase in phases.values())
    not_allocated = sum(sum(phase.tally.not_allocated.values()) for phase in intakes)
    intake_commits = sum(p.commits for p in intakes) / max(1, sum(p.tally.all_ok for p in intakes))
    floor_commits = sum(p.commits for p in floors) / max(1, sum(p.tally.all_ok for p in floors))
    by_lines = {cost.lines: cost for cost in costs}
    one, wide, usual = by_lines[1], by_lines[WIDE_ORDER_LINES], by_lines[args.lines]
    verdict = {True: "met", False: "NOT met"}
    batches = [phases["batch"] for phases in rounds if "batch" in phases]
    median_batch_ratio = _median_of_ratios(batches, intakes) if batches else float("nan")
    lines = [
        (
            f"API intake vs floor ({args.lines}-line orders, {args.clients} clients, gunicorn {args.workers} sync workers, "
            f"{args.seconds:g} s per phase after {WARMUP_SECONDS:g} s warm-up)"
        ),
        "round  intake/s  floor/s  ratio",
        *(
            f"{n:>5}  {phases['intake'].per_second:8.1f}  {phases['floor'].per_second:7.1f}  {ratio:5.2f}"
            for n, (phases, ratio) in enumerate(zip(rounds, ratios, strict=True), 1)
        ),
        f"median ratio {median_ratio:.2f} (bar {BAR_RATIO}: {verdict[median_ratio >= BAR_RATIO]})",
        *(
            [
                "api-floor (the API layers alone, one INSERT; see bench/floor_app.py): "
                + ", ".join(f"{p.per_second:.1f}/s" for p in api_floors)
                + f"; median api-floor/floor {_median_of_ratios(api_floors, floors):.2f}"
                + f", intake/api-floor {_median_of_ratios(intakes, api_floors):.2f}"
            ]
            if api_floors
            else []
        ),
        *(
            [
                f"batch ({args.batch} orders a request): "
                + ", ".join(f"{p.per_second:.1f} orders/s" for p in batches)
                + f"; median batch/intake {median_batch_ratio:.2f} "
                f"(bar {BATCH_BAR_RATIO:g}: {verdict[median_batch_ratio >= BATCH_BAR_RATIO]})"
            ]
            if batches
            else []
        ),
        (
            "commits per request (pg_stat_database xact_commit, read-only statements and connection setup included): "
            f"intake {intake_commits:.2f}, floor {floor_commits:.2f}"
        ),
        (
            f"transactions per order in-process ({args.lines} lines): {usual.transactions}, of which writing "
            f"{usual.writing_transactions} (bar 1: {verdict[usual.writing_transactions == 1]})"
        ),
        (
            f"queries per order: 1 line {one.queries}, {WIDE_ORDER_LINES} lines {wide.queries}"
            + (f", {args.lines} lines {usual.queries}" if args.lines not in (1, WIDE_ORDER_LINES) else "")
            + f" (bar equal: {verdict[one.queries == wide.queries]}); of the {usual.queries}: "
            f"{usual.transaction_markers} BEGIN/COMMIT, {usual.savepoint_statements} savepoint, {usual.other_statements} other"
        ),
        (
            f"in-process, one at a time: {timing.wall_ms:.1f} ms per {args.lines}-line order, "
            f"{timing.database_ms:.1f} ms of it in database calls"
        ),
        f"non-2xx answers: {non_2xx}; 2xx intake answers not 201/allocated: {not_allocated}",
        environment,
    ]
    return "\n".join(lines)


def environment_line(server: ScratchServer) -> str:
    import gunicorn
    from django.conf import settings

    return (
        f"PostgreSQL {server.version()}, Python {platform.python_version()}, gunicorn {gunicorn.__version__}, "
        f"{os.cpu_count()} CPU(s), CONN_MAX_AGE {settings.DATABASES['default']['CONN_MAX_AGE']}"
    )


# --- command line ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="intake/floor pairs (default 3)")
    parser.add_argument("--lines", type=int, default=3, help="lines per order (default 3)")
    parser.add_argument("--profile", action="store_true", help=f"also cProfile {PROFILE_REQUESTS} in-process intake requests")
    parser.add_argument(
        "--queries", action="store_true", help="also print the statements of one in-process --lines-line intake request"
    )
    parser.add_argument(
        "--api-floor",
        action="store_true",
        help="also run an api-floor phase in each round: the API layers alone, writing one row",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        metavar="N",
        help="also run a batch phase after each intake: batches of N orders to POST /api/v1/orders/batch/ (default off)",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help=f"also measure the CPU of {CPU_REQUESTS} in-process requests of each kind (this process + its PostgreSQL backend)",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="also send one intake's statements again on new and used PostgreSQL backends, and show each one's CPU",
    )
    parser.add_argument("--in-process-only", action="store_true", help="measure in process only: no gunicorn phases")
    args = parser.parse_args()
    if min(args.clients, args.workers, args.rounds, args.lines) < 1 or args.seconds <= 0:
        parser.error("--seconds, --clients, --workers, --rounds and --lines must be positive")
    if not 0 <= args.batch <= 100:
        parser.error("--batch takes 1 to 100 orders a request (0: no batch phase)")
    if args.lines > SKU_COUNT:
        parser.error(f"--lines can be at most {SKU_COUNT} (the seeded SKUs)")
    return args


def main() -> None:
    args = parse_args()
    gunicorn = None
    with migrated_scratch_database("bench_api_ingest", BENCH_ENVIRONMENT, StatsServer) as (server, _server_url, database):
        try:
            token, sku_codes = seed()
            costs, timing = measure_in_process(args, token, sku_codes)
            if args.in_process_only:
                return
            environment = environment_line(server)
            close_django_connections()  # so this process's statements are all counted before the first phase
            with tempfile.TemporaryDirectory(prefix="bench_api_ingest_") as scratch_dir:
                gunicorn = Gunicorn(args.workers, Path(scratch_dir) / "gunicorn.log")
                gunicorn.wait_until_serving()
                rounds = run_rounds(args, server, database, gunicorn.port, token, sku_codes)
                gunicorn.stop()
            print()
            print(summarize(args, rounds, costs, timing, environment))
        finally:
            if gunicorn is not None:
                gunicorn.stop()


if __name__ == "__main__":
    main()
