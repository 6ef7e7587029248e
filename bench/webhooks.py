"""Webhooks benchmark: Shopify orders/create receipts per second (the 202 path), events applied per second end
to end (receipt to allocated order, with a real Celery worker), and outbox deliveries per second to a local
receiver.

Run from the project root against a PostgreSQL server and a Redis server:

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/webhooks.py
    .venv/bin/python bench/webhooks.py --orders 400 --clients 8 --deliveries 300
    .venv/bin/python bench/webhooks.py --profile     # first: CPU per receipt, apply and delivery in process, and where it goes

The database DATABASE_URL names is never touched: the script creates bench_webhooks_<pid> on the same server,
migrates it and seeds one US location holding the Shopify sample's five SKUs (tests/fixtures/shopify/
orders_create.json) at the sample's line prices with ample stock, a partner and its Shopify storefront
systems. It is dropped at the end, also on error, Ctrl-C and SIGTERM.

Nor is the Redis database REDIS_URL names: Celery's queue is the default "celery" (the settings do not let the
environment choose another), so the script takes an empty database of its own on the same server (--redis-db,
or the highest-numbered empty one), marks it taken, and flushes it at the end. Celery and the cache use that
database; the settings' VAR_DIR points at a temporary directory, so no file under var/ is touched.

gunicorn (sync workers) serves fulfillment.wsgi on a free 127.0.0.1 port with DEBUG off and plain HTTP.
Every body is the sample with a fresh order id and customer email (so none looks like a duplicate of
another), signed with integrations.signatures.shopify_signature; bodies and signatures are made before
the clock starts. --clients asyncio tasks post them back to back through one httpx.AsyncClient. A few
warm-up receipts (another storefront, another partner) go through every gunicorn worker first, and the
Celery worker applies those before phase 2's clock starts.

1. Receipts: no Celery worker runs, so every apply task waits in Redis; the figure is 202 answers over the
   time from the first post to the last answer. After it the script checks that every event was stored and
   every task enqueued, then drops those tasks: those events are never applied.
2. Applied end to end: a real worker (`celery -A fulfillment worker`, prefork, --concurrency) runs beside
   gunicorn; another storefront system posts --orders new orders, and the clock runs from the first post
   until the database shows all of them allocated (polled every POLL_SECONDS).
3. Outbox deliveries: a ThreadingHTTPServer in this process answers 200 to every post; a WMS points at it;
   --deliveries pick tickets (from the orders of phase 2) are written with outbox_write in one
   transaction, and the clock runs from its commit (when the send tasks are enqueued) until every delivery
   is delivered. The first delivery's Standard Webhooks signature is checked with the WMS's secret.

Each phase also shows the CPU its processes used per item (/proc/<pid>/stat of gunicorn and its workers, of
the Celery worker and its children, and of this process: the clients, the receiver and the polling), which
the machine's other load moves far less than the rates; PostgreSQL's backends, one per connection, and Redis
are not in it. --profile measures the backends' share in process: each receipt (through django.test.Client),
apply and delivery on a new connection, this process's CPU and that of the backend (/proc/<pid>/schedstat,
so PostgreSQL must run on this machine), with a CPU-time cProfile of receipts and of deliveries.

CONN_MAX_AGE comes from the environment (0 by default, as in bench/api_ingest.py): every request and every
task then opens its own PostgreSQL connection. Everything (PostgreSQL, Redis, gunicorn, the worker, the
clients, the receiver) shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.scratch import (
    LOOPBACK_ENVIRONMENT,
    ScratchServer,
    backend_cpu_ms,
    close_django_connections,
    exit_on_sigterm,
    free_port,
    migrate_quietly,
    require_postgres,
    setup_django_on,
    url_for_database,
)

SAMPLE = PROJECT_ROOT / "tests" / "fixtures" / "shopify" / "orders_create.json"
STOCK_PER_SKU = 10_000_000
PARTNER = "bench-shop"
RECEIPT_SYSTEM = "bench-shop-receipts"
APPLY_SYSTEM = "bench-shop-apply"
WARMUP_SYSTEM = "bench-shop-warmup"
WARMUP_PARTNER = "bench-warmup"
PROFILE_SYSTEM = "bench-shop-profile"
WMS_SYSTEM = "bench-wms"
WARMUP_POSTS_PER_WORKER = 4
CELERY_QUEUE = "celery"
REDIS_MARKER = "bench:webhooks:owner"
POLL_SECONDS = 0.1
PROFILE_RECEIPTS = 200
PROFILE_APPLIES = 100
PROFILE_DELIVERIES = 100
PROFILE_WMS_SYSTEM = "bench-wms-profile"
SAMPLES_SHOWN = 3
BENCH_ENVIRONMENT = {**LOOPBACK_ENVIRONMENT, "LOG_LEVEL": "WARNING"}


# --- Redis: a database of our own --------------------------------------------------------------


def claim_redis_db(url: str, wanted: int | None):
    """An empty database on REDIS_URL's server, marked ours; gives (its URL, a client on it)."""
    import redis

    parts = urlsplit(url)
    named = int(parts.path.lstrip("/") or 0)
    probe = redis.Redis.from_url(url)
    try:
        count = int(probe.config_get("databases").get("databases", 16))
    except redis.ResponseError:  # CONFIG may be disabled on a managed server; 16 is Redis's default
        count = 16
    probe.close()
    candidates = [wanted] if wanted is not None else [db for db in range(count - 1, -1, -1) if db != named]
    for db in candidates:
        own_url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))
        client = redis.Redis.from_url(own_url)
        # Empty, and the marker taken atomically: two runs at once never share a database.
        if client.dbsize() == 0 and client.set(REDIS_MARKER, os.getpid(), nx=True):
            return own_url, client
        client.close()
    sys.exit(f"no empty Redis database on {parts.hostname}:{parts.port} (tried {candidates}); name one with --redis-db")


def waiting_tasks(redis_client) -> int:
    return redis_client.llen(CELERY_QUEUE)


# --- seeding ---------------------------------------------------------------------------------


@dataclass
class Seeded:
    secret: str
    sample: dict
    skus: dict[str, str]


def seed() -> Seeded:
    """The sample's SKUs at its line prices, ample stock at one US site, the partner and its storefronts."""
    from core.actors import Actor
    from integrations.services.systems import system_ensure
    from inventory.models import Location, Sku
    from inventory.services import stock_receive
    from orders.services.partners import partner_ensure

    sample = json.loads(SAMPLE.read_text())
    skus = {item["sku"]: str(item["price"]) for item in sample["line_items"]}
    actor = Actor.job("bench")
    location = Location.objects.create(code="BENCH-US", name="Bench site", country="US", ships_to=["US"], active=True)
    for code, price in skus.items():
        sku = Sku.objects.create(code=code, name=code, unit_price=Decimal(price), case_pack=1)
        stock_receive(location_id=location.pk, sku_id=sku.pk, quantity=STOCK_PER_SKU, actor=actor, reference="bench")
    secret = "shpss_" + secrets.token_hex(16)
    partner_ensure(code=PARTNER, name="Bench storefront")
    partner_ensure(code=WARMUP_PARTNER, name="Bench warm-up storefront")
    systems = {RECEIPT_SYSTEM: PARTNER, APPLY_SYSTEM: PARTNER, WARMUP_SYSTEM: WARMUP_PARTNER, PROFILE_SYSTEM: WARMUP_PARTNER}
    for slug, partner in systems.items():
        system_ensure(slug=slug, kind="storefront", adapter="shopify", partner=partner, secret=secret)
    return Seeded(secret, sample, skus)


# --- signed webhooks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    path: str
    body: bytes
    headers: dict[str, str]


def shopify_posts(seeded: Seeded, slug: str, count: int, first_id: int) -> list[Post]:
    """`count` orders/create webhooks: the sample with fresh order ids and customer emails, signed."""
    from integrations.signatures import shopify_signature

    posts = []
    for n in range(count):
        order_id = first_id + n
        email = f"buyer-{order_id}@bench.example"
        payload = {
            **seeded.sample,
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{order_id}",
            "order_number": order_id,
            "number": order_id,
            "email": email,
            "contact_email": email,
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": shopify_signature(seeded.secret, body),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            "X-Shopify-Shop-Domain": "bench.myshopify.com",
        }
        posts.append(Post(f"/integrations/{slug}/webhooks/", body, headers))
    return posts


@dataclass
class PostTally:
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu_seconds: float = 0.0

    def note(self, sample: str) -> None:
        if len(self.samples) < SAMPLES_SHOWN:
            self.samples.append(sample)

    @property
    def accepted(self) -> int:
        return self.statuses[202]

    def problems(self) -> str:
        other = {status: n for status, n in self.statuses.items() if status != 202}
        shown = ([f"non-202 {other}"] if other else []) + ([f"errors {dict(self.errors)}"] if self.errors else [])
        return ("  " + "; ".join(shown) + "".join(f"\n    {s}" for s in self.samples)) if shown else ""


async def _post_all(port: int, posts: list[Post], clients: int) -> PostTally:
    import httpx

    tally = PostTally()
    pending = iter(posts)  # shared by the clients: each takes the next post when its last one is answered
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:

        async def one_client() -> None:
            for post in pending:
                try:
                    response = await client.post(post.path, content=post.body, headers=post.headers)
                except httpx.HTTPError as error:
                    tally.errors[type(error).__name__] += 1
                    tally.note(f"{type(error).__name__}: {error}")
                    continue
                tally.statuses[response.status_code] += 1
                if response.status_code != 202:
                    tally.note(f"{response.status_code}: {response.text[:200]}")

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        tally.seconds = time.perf_counter() - started
        tally.client_cpu_seconds = time.process_time() - cpu_started
    return tally


def post_all(port: int, posts: list[Post], clients: int) -> PostTally:
    return asyncio.run(_post_all(port, posts, clients))


# --- servers ----------------------------------------------------------------------------------


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and its descendants, living or ended (utime, stime, cutime and cstime in /proc/<pid>/stat)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), sum(int(value) for value in fields[11:15]))
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        total += table.get(pid, (0, 0))[1]
        frontier += [child for child, (parent, _) in table.items() if parent == pid]
    return total / os.sysconf("SC_CLK_TCK")


class Child:
    """A server this script starts in a session of its own, logging to a file, stopped gracefully."""

    name = "child"

    def __init__(self, command: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until stop() closes it
        # os.environ holds the scratch DATABASE_URL, our own REDIS_URL, VAR_DIR and BENCH_ENVIRONMENT.
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True
        )

    def log_tail(self, characters: int = 3000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-characters:]

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown: the master stops its own workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group this script started, children and all
                self.process.wait()
        if not self.log.closed:
            self.log.close()


class Gunicorn(Child):
    name = "gunicorn"

    def __init__(self, workers: int, log_path: Path) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "gunicorn", "fulfillment.wsgi:application", "--chdir", str(PROJECT_ROOT)]
        command += ["--worker-class", "sync", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}"]
        command += ["--timeout", "120", "--log-level", "warning"]
        super().__init__(command, log_path)

    def wait_until_serving(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")


class Worker(Child):
    name = "celery worker"

    def __init__(self, concurrency: int, log_path: Path) -> None:
        command = [sys.executable, "-m", "celery", "-A", "fulfillment", "worker", "--pool=prefork"]
        command += [f"--concurrency={concurrency}", "--loglevel=INFO", "-Q", CELERY_QUEUE]
        command += ["-n", f"bench-webhooks-{os.getpid()}@%h"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        super().__init__(command, log_path)

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log_tail(100_000):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker was not ready within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)


class Receiver(ThreadingHTTPServer):
    """Answers 200 to every post and remembers what came: delivery ids, and the first request whole."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.lock = threading.Lock()
        self.posts = 0
        self.delivery_ids: set[str] = set()
        self.first: tuple[bytes, dict[str, str]] | None = None
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def note(self, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            self.posts += 1
            self.delivery_ids.add(headers.get("webhook-id", ""))
            if self.first is None:
                self.first = (body, headers)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()
        self.server_close()


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.note(body, {name.lower(): value for name, value in self.headers.items()})
        answer = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args) -> None:
        pass


# --- phases ----------------------------------------------------------------------------------


def events_by_status(slug: str) -> Counter:
    from django.db.models import Count

    from integrations.models import InboundEvent

    rows = InboundEvent.objects.filter(system__slug=slug).values_list("status").annotate(n=Count("id")).order_by()
    return Counter(dict(rows))


def warm_up(args, port: int, seeded: Seeded, redis_client) -> list[Post]:
    """A few receipts through every gunicorn worker before the clock (first-request imports and caches), whose
    tasks are then dropped; the warm-up events are kept for warming the worker."""
    posts = shopify_posts(seeded, WARMUP_SYSTEM, WARMUP_POSTS_PER_WORKER * args.workers, first_id=9 * 10**15)
    tally = post_all(port, posts, args.workers)
    if tally.accepted != len(posts):
        raise RuntimeError(f"warm-up: {tally.accepted} of {len(posts)} answered 202{tally.problems()}")
    redis_client.delete(CELERY_QUEUE)
    return posts


@dataclass
class Figure:
    what: str
    parameters: str
    count: int
    seconds: float
    detail: str = ""

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else float("nan")

    def line(self) -> str:
        return f"{self.what:<24} {self.parameters:<44} {self.seconds:7.2f} s  {self.per_second:7.1f}/s"


def cpu_note(unit: str, count: int, used: dict[str, float]) -> str:
    """CPU per item of each process group (PostgreSQL's short-lived backends and Redis are not counted), and the
    machine's load: other people's work on the same cores shows there."""
    shown = ", ".join(f"{name} {seconds * 1000 / max(count, 1):.1f} ms" for name, seconds in used.items())
    return f"CPU per {unit}: {shown}; 1-minute load average {os.getloadavg()[0]:.1f}"


def phase_receipts(args, gunicorn: Gunicorn, seeded: Seeded, redis_client) -> Figure:
    posts = shopify_posts(seeded, RECEIPT_SYSTEM, args.orders, first_id=1 * 10**15)
    before, served_before = waiting_tasks(redis_client), gunicorn.cpu_seconds()
    tally = post_all(gunicorn.port, posts, args.clients)
    served = gunicorn.cpu_seconds() - served_before
    stored = sum(events_by_status(RECEIPT_SYSTEM).values())
    enqueued = waiting_tasks(redis_client) - before
    redis_client.delete(CELERY_QUEUE)  # these events are never applied: phase 2 starts from an empty queue
    detail = (
        f"{tally.accepted} answered 202, {stored} events stored, {enqueued} apply tasks enqueued (then dropped)\n    "
        + cpu_note("receipt", tally.accepted, {"gunicorn": served, "clients": tally.client_cpu_seconds})
        + tally.problems()
    )
    parameters = f"N={args.orders}, {args.clients} clients, no worker"
    return Figure("1 receipts (202)", parameters, tally.accepted, tally.seconds, detail)


def warm_worker(warmup_posts: list[Post], timeout: float) -> None:
    """Apply the warm-up events, so the worker's children have imported and connected before the clock."""
    from integrations.models import InboundEvent
    from integrations.tasks import inbound_apply_task

    ids = list(InboundEvent.objects.filter(system__slug=WARMUP_SYSTEM).values_list("pk", flat=True))
    for pk in ids:
        inbound_apply_task.delay(pk)
    deadline = time.monotonic() + timeout
    while events_by_status(WARMUP_SYSTEM).get("received", 0):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not apply {len(warmup_posts)} warm-up events within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def order_statuses() -> Counter:
    from django.db.models import Count

    from orders.models import Order

    rows = Order.objects.filter(partner__code=PARTNER).values_list("status").annotate(n=Count("id")).order_by()
    return Counter(dict(rows))


def phase_applied(args, gunicorn: Gunicorn, seeded: Seeded, worker: Worker) -> Figure:
    from django.db.models import F

    from integrations.models import InboundEvent

    posts = shopify_posts(seeded, APPLY_SYSTEM, args.orders, first_id=2 * 10**15)
    result: dict[str, PostTally | BaseException] = {}

    def send() -> None:
        try:
            result["tally"] = post_all(gunicorn.port, posts, args.clients)
        except BaseException as error:  # raised again in the main thread below
            result["tally"] = error

    sender = threading.Thread(target=send)
    served_before, worked_before, own_before = gunicorn.cpu_seconds(), worker.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    sender.start()
    deadline = started + args.timeout
    while True:
        statuses = order_statuses()
        events = events_by_status(APPLY_SYSTEM)
        # An event is applied in the transaction that allocates its order: once none waits, the count is final.
        processed = sum(events.values()) - events.get("received", 0)
        if processed >= args.orders or time.perf_counter() > deadline or isinstance(result.get("tally"), BaseException):
            break
        worker.check_alive()
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    sender.join()
    used = {
        "gunicorn": gunicorn.cpu_seconds() - served_before,
        "worker": worker.cpu_seconds() - worked_before,
        "clients and polling": time.process_time() - own_before,
    }
    tally = result["tally"]
    if isinstance(tally, BaseException):
        raise tally
    allocated = statuses.get("allocated", 0)
    waits = sorted(
        (processed - received).total_seconds()
        for received, processed in InboundEvent.objects.filter(system__slug=APPLY_SYSTEM, processed_at__isnull=False)
        .annotate(received=F("received_at"))
        .values_list("received", "processed_at")
    )
    detail = (
        f"{allocated} of {args.orders} allocated; orders by status {dict(statuses)}; events by status {dict(events)}; "
        f"posts done after {tally.seconds:.2f} s ({tally.accepted} answered 202)"
    )
    if waits:
        detail += f"; receipt to applied: median {statistics.median(waits):.2f} s, max {waits[-1]:.2f} s"
    detail += "\n    " + cpu_note("order", allocated, used)
    if allocated < args.orders:
        failed = InboundEvent.objects.filter(system__slug=APPLY_SYSTEM, status="failed").values_list("error", flat=True).first()
        detail += f"\n    NOT all allocated within {args.timeout:g} s" + (f"; first failure: {failed}" if failed else "")
    detail += tally.problems()
    parameters = f"N={args.orders}, {args.clients} clients, worker concurrency {args.concurrency}"
    return Figure("2 applied end to end", parameters, allocated, seconds, detail)


def pick_tickets(count: int, partner: str = PARTNER) -> list[tuple]:
    """(order, payload) for up to `count` of the partner's orders: real pick tickets to write as messages."""
    from integrations.services.outbox import pick_ticket
    from orders.models import Shipment

    shipments = Shipment.objects.filter(order__partner__code=partner).select_related("order__partner", "location").order_by("pk")
    return [(shipment.order, pick_ticket(shipment.order, shipment)) for shipment in shipments[:count]]


def phase_deliveries(args, receiver: Receiver, worker: Worker) -> Figure:
    from django.db import transaction
    from django.db.models import Count

    from integrations.models import Delivery
    from integrations.services.outbox import MessageType, outbox_write
    from integrations.services.systems import system_ensure
    from integrations.signatures import SignatureRejected, standard_verify

    wms = system_ensure(slug=WMS_SYSTEM, kind="wms", adapter="generic_wms", base_url=receiver.url).system
    tickets = pick_tickets(args.deliveries)
    if not tickets:
        raise RuntimeError("phase 2 left no shipment to write pick tickets for")
    committed: list[float] = []
    write_started = time.perf_counter()
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.perf_counter()))  # first in line: the moment of commit
        for n in range(args.deliveries):
            order, payload = tickets[n % len(tickets)]
            outbox_write(type=MessageType.PICK_TICKET, payload=payload, receivers=[wms], order=order)
    enqueued = time.perf_counter()
    started = committed[0]
    worked_before, own_before = worker.cpu_seconds(), time.process_time()
    deadline = started + args.timeout
    while True:
        rows = Delivery.objects.filter(system=wms).values_list("status").annotate(n=Count("id")).order_by()
        statuses = Counter(dict(rows))
        if statuses.get("delivered", 0) + statuses.get("dead", 0) >= args.deliveries or time.perf_counter() > deadline:
            break
        worker.check_alive()
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    used = {"worker": worker.cpu_seconds() - worked_before, "receiver and polling": time.process_time() - own_before}
    delivered = statuses.get("delivered", 0)
    signed = "no delivery arrived"
    if receiver.first is not None:
        body, headers = receiver.first
        try:
            standard_verify(wms.accepted_secrets, body, headers)
            signed = "the first one's signature checks out"
        except SignatureRejected as rejected:
            signed = f"the first one's signature does NOT check: {rejected}"
    detail = (
        f"{delivered} of {args.deliveries} delivered; deliveries by status {dict(statuses)}; written in "
        f"{started - write_started:.2f} s, {args.deliveries} send tasks enqueued {enqueued - started:.2f} s after commit; "
        f"the receiver got {receiver.posts} posts of {len(receiver.delivery_ids)} delivery ids; {signed}\n    "
        + cpu_note("delivery", delivered, used)
    )
    if delivered < args.deliveries:
        detail += f"\n    NOT all delivered within {args.timeout:g} s"
    parameters = f"M={args.deliveries}, worker concurrency {args.concurrency}"
    return Figure("3 outbox deliveries", parameters, delivered, seconds, detail)


# --- in process: where the time goes ---------------------------------------------------------


@dataclass
class CpuSplit:
    what: str
    count: int
    wall_ms: float
    python_ms: float
    database_ms: float | None
    statements: int

    def line(self) -> str:
        database = f"{self.database_ms:6.2f} ms PostgreSQL" if self.database_ms is not None else "PostgreSQL not on this machine"
        return (
            f"  {self.what:<22} {self.statements:3d} statements  {self.wall_ms:6.2f} ms wall  "
            f"{self.python_ms:6.2f} ms Python + {database}  (median of {self.count})"
        )


def cpu_split(what: str, items: list, run) -> CpuSplit:
    """Median wall and CPU of `run(item)`, each on a new connection (as with CONN_MAX_AGE 0): this process's CPU,
    and that of the PostgreSQL backend that served it, start-up included; and the statements of the last one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    python, database, wall = [], [], []
    for item in items[:-1]:
        connection.close()
        started, cpu_started = time.perf_counter(), time.process_time()
        run(item)
        python.append((time.process_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
        used = backend_cpu_ms(connection.connection.info.backend_pid) if connection.connection else None
        if used is not None:
            database.append(used)
    connection.close()
    with CaptureQueriesContext(connection) as captured:
        run(items[-1])
    connection.close()
    median_database = statistics.median(database) if database else None
    return CpuSplit(what, len(python), statistics.median(wall), statistics.median(python), median_database, len(captured))


def cpu_profile(what: str, items: list, run, lines: int) -> str:
    """cProfile on CPU time (not wall: waiting for PostgreSQL, Redis or the receiver is left out)."""
    from django.db import connection

    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for item in items:
        connection.close()
        run(item)
    profiler.disable()
    connection.close()
    out = io.StringIO()
    out.write(f"cProfile (CPU time) of {len(items)} {what}, new connection each, by cumulative time:\n")
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


def _client_post(client, post: Post):
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in post.headers.items() if name != "Content-Type"}
    response = client.post(post.path, data=post.body, content_type="application/json", **meta)
    if response.status_code != 202:
        raise RuntimeError(f"an in-process receipt answered {response.status_code}: {response.content[:300]!r}")
    return response


def profile_report(seeded: Seeded, redis_client) -> str:
    """Where a receipt, an apply and a delivery spend their CPU, in process (the receipt through the whole
    middleware stack with django.test.Client; the apply and the delivery as their tasks call them)."""
    from django.test import Client

    from integrations.models import Delivery, InboundEvent
    from integrations.services import inbound, relay
    from integrations.services.outbox import MessageType, outbox_write
    from integrations.services.systems import system_ensure

    client = Client(HTTP_HOST="127.0.0.1")
    posts = shopify_posts(seeded, PROFILE_SYSTEM, 2 * PROFILE_RECEIPTS + 10, first_id=8 * 10**15)
    for post in posts[:10]:  # first-request imports and caches
        _client_post(client, post)
    receipt = cpu_split("receipt (202)", posts[10 : 10 + PROFILE_RECEIPTS], lambda post: _client_post(client, post))
    receipt_profile = cpu_profile("receipts", posts[10 + PROFILE_RECEIPTS :], lambda post: _client_post(client, post), 40)

    events = list(InboundEvent.objects.filter(system__slug=PROFILE_SYSTEM).order_by("pk").values_list("pk", flat=True))
    for pk in events[:10]:
        inbound.inbound_apply(pk)
    apply = cpu_split("apply (orders/create)", events[10 : 10 + PROFILE_APPLIES], inbound.inbound_apply)
    redis_client.delete(CELERY_QUEUE)  # the apply tasks of these receipts: applied here already

    with Receiver() as receiver:
        wms = system_ensure(slug=PROFILE_WMS_SYSTEM, kind="wms", adapter="generic_wms", base_url=receiver.url).system
        tickets = pick_tickets(PROFILE_APPLIES, partner=WARMUP_PARTNER)
        for n in range(10 + 2 * PROFILE_DELIVERIES):
            order, payload = tickets[n % len(tickets)]
            outbox_write(type=MessageType.PICK_TICKET, payload=payload, receivers=[wms], order=order)  # autocommit: one each
        deliveries = list(Delivery.objects.filter(system=wms).order_by("pk").values_list("pk", flat=True))
        redis_client.delete(CELERY_QUEUE)  # sent here instead
        for pk in deliveries[:10]:
            relay.delivery_send(pk)
        delivery = cpu_split("delivery (200)", deliveries[10 : 10 + PROFILE_DELIVERIES], relay.delivery_send)
        delivery_profile = cpu_profile("deliveries", deliveries[10 + PROFILE_DELIVERIES :], relay.delivery_send, 25)
    wms.active = False  # its receiver is gone; nothing must be sent to it again
    wms.save(update_fields=["active"])
    lines = ["CPU per item in process, each on a new PostgreSQL connection:", receipt.line(), apply.line(), delivery.line()]
    return "\n".join([*lines, receipt_profile, delivery_profile])


# --- command line ---------------------------------------------------------------------------


def environment_line(server: ScratchServer, args, redis_db: str) -> str:
    import celery
    import gunicorn
    from django.conf import settings

    return (
        f"PostgreSQL {server.version()}, Redis db {redis_db}, Python {platform.python_version()}, "
        f"gunicorn {gunicorn.__version__} ({args.workers} sync workers), "
        f"Celery {celery.__version__} (prefork, concurrency {args.concurrency}), "
        f"CONN_MAX_AGE {settings.DATABASES['default']['CONN_MAX_AGE']}; {os.cpu_count()} CPU(s) shared by all of them, "
        "the clients and the receiver"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400, help="webhooks in phases 1 and 2, N (default 400)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--deliveries", type=int, default=300, help="outbox deliveries in phase 3, M (default 300)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up phases 2 and 3 after this many seconds")
    parser.add_argument("--redis-db", type=int, help="the (empty) Redis database to use on REDIS_URL's server")
    parser.add_argument(
        "--profile", action="store_true", help="also CPU per receipt, apply and delivery in process, and where it goes"
    )
    args = parser.parse_args()
    if min(args.orders, args.clients, args.deliveries, args.workers, args.concurrency) < 1 or args.timeout <= 0:
        parser.error("--orders, --clients, --deliveries, --workers, --concurrency and --timeout must be positive")
    return args


def main() -> None:
    args = parse_args()
    exit_on_sigterm()  # so a plain kill, too, stops the servers and drops the scratch databases
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    if not os.environ.get("REDIS_URL"):
        sys.exit("REDIS_URL is not set; the end-to-end phases need a Redis server for Celery.")
    redis_url, redis_client = claim_redis_db(os.environ["REDIS_URL"], args.redis_db)
    scratch_dir = Path(tempfile.mkdtemp(prefix="bench_webhooks_"))
    os.environ.update(BENCH_ENVIRONMENT, REDIS_URL=redis_url, VAR_DIR=str(scratch_dir))
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    database = f"bench_webhooks_{os.getpid()}"
    children: list[Child] = []
    try:
        with ScratchServer(server_url) as server:  # drops the database on the way out, after the servers stop below
            try:
                server.create(database)
                setup_django_on(url_for_database(server_url, database))
                print(f"migrating and seeding scratch database {database}", file=sys.stderr, flush=True)
                migrate_quietly()
                seeded = seed()
                if args.profile:
                    print(profile_report(seeded, redis_client), flush=True)
                environment = environment_line(server, args, redis_url.rsplit("/", 1)[1])
                close_django_connections()
                gunicorn = Gunicorn(args.workers, scratch_dir / "gunicorn.log")
                children.append(gunicorn)
                gunicorn.wait_until_serving()
                warmup_posts = warm_up(args, gunicorn.port, seeded, redis_client)
                figures = [phase_receipts(args, gunicorn, seeded, redis_client)]
                print(figures[-1].line(), f"\n    {figures[-1].detail}", flush=True)
                worker = Worker(args.concurrency, scratch_dir / "worker.log")
                children.append(worker)
                worker.wait_until_ready()
                warm_worker(warmup_posts, args.timeout)
                figures.append(phase_applied(args, gunicorn, seeded, worker))
                print(figures[-1].line(), f"\n    {figures[-1].detail}", flush=True)
                with Receiver() as receiver:
                    figures.append(phase_deliveries(args, receiver, worker))
                print(figures[-1].line(), f"\n    {figures[-1].detail}", flush=True)
                print()
                print(f"{'':<24} {'parameters':<44} {'seconds':>9}  {'per second':>9}")
                for figure in figures:
                    print(figure.line())
                print(environment)
            finally:
                for child in reversed(children):
                    child.stop()
    finally:
        redis_client.flushdb()  # empty when we took it: everything in it is ours
        redis_client.close()
        shutil.rmtree(scratch_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
