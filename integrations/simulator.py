"""The partner simulator: a Shopify storefront, an ERP and a WMS on localhost, in one process.

It answers the outbox's deliveries as the partners would (checking their signatures, deduping on their ids,
failing now and then) and sends the portal signed webhooks: new orders built from Shopify's own sample, and,
for what the portal told it, the warehouse's picks, short picks, label failures and shipments, the ERP's
invoices, and the warehouse's stock counts and recounts. The warehouse also answers the portal's signed
`GET /inventory` with what it believes is on its shelves. It reads the catalogue and the stock through the
ORM to order and count things that exist; everything it tells the portal goes over HTTP.

The work is done by `Simulator` methods that a test calls directly: `handle_delivery` and `handle_inventory`
(what a server thread does with a request), `build_*` (one webhook, or the inventory), `follow_ups` and
`next_webhooks` (what is due), `send` (one post). `run` adds the clock, the rate and the summary lines.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import connections

from inventory.models import Location, Sku, StockLevel
from orders.services.partners import partner_ensure

from .models import Adapter, ExternalSystem, SystemKind
from .services.systems import system_ensure
from .signatures import SignatureRejected, shopify_signature, standard_headers, standard_verify

SHOPIFY_SAMPLE = Path(settings.BASE_DIR) / "tests" / "fixtures" / "shopify" / "orders_create.json"

STOREFRONT, ERP, WMS = "sim-shop", "sim-erp", "sim-wms"
SYSTEMS = {
    STOREFRONT: (SystemKind.STOREFRONT, Adapter.SHOPIFY),
    ERP: (SystemKind.ERP, Adapter.GENERIC_ERP),
    WMS: (SystemKind.WMS, Adapter.GENERIC_WMS),
}

# Seconds the warehouse takes for each step of a pick ticket (from the step before), as (shortest, longest).
STEP_DELAYS = {
    "shipment.picked": (3.0, 10.0),
    "shipment.short_picked": (3.0, 10.0),
    "shipment.packed": (2.0, 6.0),
    "shipment.label_failed": (2.0, 6.0),
    "shipment.shipped": (2.0, 6.0),
    "shipment.delivered": (20.0, 60.0),
}
RELABEL_DELAY = (10.0, 30.0)  # a failed label is printed again before the parcel leaves
INVOICE_DELAY = (5.0, 20.0)
RECOUNT_DELAY = (10.0, 60.0)  # someone walks to the bin and counts it again
SEND_ATTEMPTS = 3  # a webhook the portal did not take (no answer, 5xx, 429) is sent again, with the same id
RESEND_AFTER = 5.0  # seconds before the second attempt, doubling
CATALOGUE_TTL = 30.0  # seconds the simulator keeps its copy of the catalogue's SKUs
COUNTED_SKUS = 8  # at most this many SKUs in one count
SHELF_DRIFT = (0.01, 0.20)  # how far off a figure the WMS has wrong is, as a share of ours (at least one unit)

LABEL_FAILURES = (
    "Carrier rejected the address: street not found",
    "Carrier API timed out",
    "Parcel weight exceeds the service's limit",
)
CARRIERS = {"US": ("UPS", "FedEx", "USPS"), "GB": ("Royal Mail", "DPD"), "DE": ("DHL", "DPD")}
CURRENCIES = {"US": "USD", "GB": "GBP", "DE": "EUR"}
CUSTOMERS = (
    ("Ada", "Lovelace"),
    ("Grace", "Hopper"),
    ("Alan", "Turing"),
    ("Katherine", "Johnson"),
    ("Linus", "Pauling"),
    ("Emmy", "Noether"),
    ("Tim", "Berners-Lee"),
    ("Margaret", "Hamilton"),
)


def _address(address1: str, city: str, province: str, province_code: str, zip_code: str | None, country_code: str) -> dict:
    return {
        "address1": address1,
        "address2": None,
        "city": city,
        "province": province or None,
        "province_code": province_code or None,
        "zip": zip_code,
        "country": {"US": "United States", "GB": "United Kingdom", "DE": "Germany"}[country_code],
        "country_code": country_code,
        "company": None,
        "phone": None,
        "latitude": None,
        "longitude": None,
    }


GOOD_ADDRESSES = (
    _address("1600 Amphitheatre Parkway", "Mountain View", "California", "CA", "94043", "US"),
    _address("350 Fifth Avenue", "New York", "New York", "NY", "10118", "US"),
    _address("123 Shipping Street", "Shippington", "Kentucky", "KY", "40003", "US"),
    _address("221B Baker Street", "London", "", "", "NW1 6XE", "GB"),
    _address("10 Downing Street", "London", "", "", "SW1A 2AA", "GB"),
    _address("Platz der Republik 1", "Berlin", "", "", "11011", "DE"),
    _address("Marienplatz 8", "München", "", "", "80331", "DE"),
)
# Each holds the order with an invalid_address exception: a postal code missing, or not of the country's format.
BAD_ADDRESSES = (
    _address("742 Evergreen Terrace", "Springfield", "Illinois", "IL", None, "US"),
    _address("1 Infinite Loop", "Cupertino", "California", "CA", "CUPERTINO", "US"),
    _address("30 St Mary Axe", "London", "", "", "12345", "GB"),
    _address("Unter den Linden 77", "Berlin", "", "", "1011", "DE"),
)


@dataclass(frozen=True)
class Options:
    portal_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    storefront_port: int = 8101
    erp_port: int = 8102
    wms_port: int = 8103
    rate: float = 2.0  # webhooks per second, follow-ups first, new orders with what is left
    fault_rate: float = 0.05  # share of deliveries answered 500 or left to time out
    timeout_share: float = 0.5  # of those faults, the share left to time out
    bad_address_rate: float = 0.1
    short_pick_rate: float = 0.1
    label_failure_rate: float = 0.05
    uninvoiced_rate: float = 0.1
    count_interval: float = 30.0  # seconds between stock counts; 0: none
    count_drift_rate: float = 0.05  # share of counted SKUs the WMS has wrong: a few units in a count, 1-20 % on its shelves
    seed: int | None = None


@dataclass
class Tally:
    """What one simulated system made of the deliveries it got."""

    received: int = 0
    duplicates: int = 0
    rejected: int = 0  # bad or missing signature (a delivery or an inventory pull), or a body that is not an envelope
    failed: int = 0  # answered 500 on purpose
    stalled: int = 0  # kept waiting past the portal's timeout on purpose (and received, or answered)
    pulls: int = 0  # GET /inventory answered with the counts

    def __str__(self) -> str:
        pulls = f" inventory pulls {self.pulls}" if self.pulls else ""
        return (
            f"received {self.received} duplicates {self.duplicates} rejected {self.rejected}{pulls} "
            f"(answered 500: {self.failed}, timed out: {self.stalled})"
        )


@dataclass
class SimulatedSystem:
    slug: str
    kind: str
    adapter: str
    secret: str  # signs what it sends
    accepted: list[str]  # check what it receives (both secrets during a rotation)
    base_url: str = ""
    seen: set[str] = field(default_factory=set)
    tally: Tally = field(default_factory=Tally)

    def webhook_url(self, portal_url: str) -> str:
        return f"{portal_url.rstrip('/')}/integrations/{self.slug}/webhooks/"


@dataclass(frozen=True)
class Reply:
    status: int
    stall: float = 0.0  # seconds to wait before answering
    payload: dict | None = None  # the answer's body; {"status": ...} when there is none


@dataclass
class Webhook:
    slug: str
    topic: str
    message_id: str
    body: bytes
    attempts: int = 0

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Ticket:
    """A pick ticket the warehouse holds: the steps still to report on it."""

    shipment_id: int
    data: dict
    steps: list[str]
    cancelled: bool = False


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _money(amount: Decimal, currency: str) -> dict:
    value = {"amount": f"{amount:.2f}", "currency_code": currency}
    return {"shop_money": value, "presentment_money": dict(value)}


class Simulator:
    def __init__(self, options: Options | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.options = options or Options()
        self.clock = clock
        self.order_rng = random.Random(self.options.seed)
        # What the partners do (faults, picks, counts) draws from a generator of its own, so that a seed repeats
        # the same orders however the deliveries happen to interleave with them.
        self.behaviour_rng = random.Random(None if self.options.seed is None else f"{self.options.seed}:behaviour")
        self.systems: dict[str, SimulatedSystem] = {}
        self.sent: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.delivered_types: Counter[str] = Counter()
        self.uninvoiced = 0
        self.tickets: dict[int, Ticket] = {}
        self.cancelled: set[int] = set()
        self.stopping = threading.Event()
        self._lock = threading.RLock()  # server threads and the sending loop share the state above
        self._due: list[tuple[float, int, Callable[[], Webhook | None]]] = []
        self._sequence = itertools.count()
        # Microseconds since the epoch: fresh across runs, and below 2**53, so JSON readers keep the id exact.
        self._ids = itertools.count(int(time.time() * 1_000_000))
        self._sample = json.loads(SHOPIFY_SAMPLE.read_text())
        self._catalogue: list[tuple[str, str, Decimal | None]] = []
        self._catalogue_read_at = float("-inf")
        self._currencies: dict[str, str] = {}  # our orders' external ids: their currency, for the invoices
        # Where a recount agreed with the portal: (location, SKU) → the figure both sides had then.
        self._recounted: dict[tuple[str, str], int] = {}
        # Which figures the WMS has wrong is drawn afresh for each run unless a seed repeats it.
        self._shelf_seed = f"{self.options.seed}:shelf" if self.options.seed is not None else secrets.token_hex(8)
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []
        self._http: httpx.Client | None = None
        self.started_at = self.clock()
        if self.options.count_interval > 0:
            self._schedule(self.options.count_interval, self._count_and_again)

    # --- setting up -----------------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Listen on the three ports, register the systems (pointing at where it listens) and serve; gives notes
        on systems that existed already and differ from what it would have registered."""
        ports = {STOREFRONT: self.options.storefront_port, ERP: self.options.erp_port, WMS: self.options.wms_port}
        try:
            for slug, port in ports.items():
                self._servers[slug] = ThreadingHTTPServer((self.options.host, port), _handler_for(self, slug))
            notes = self.register({slug: f"http://{self.options.host}:{port}/" for slug, port in self.ports.items()})
        except BaseException:
            for server in self._servers.values():
                server.server_close()
            self._servers = {}
            raise
        for server in self._servers.values():
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return notes

    def register(self, base_urls: dict[str, str]) -> list[str]:
        """Register sim-shop (with its partner), sim-erp and sim-wms, or take them as they are."""
        partner_ensure(code=STOREFRONT, name="Simulated shop")
        notes = []
        for slug, (kind, adapter) in SYSTEMS.items():
            registered = system_ensure(
                slug=slug,
                kind=kind,
                adapter=adapter,
                base_url=base_urls.get(slug, ""),
                partner=STOREFRONT if kind == SystemKind.STOREFRONT else None,
                # A Shopify app's secret is a plain string; the generic systems get a whsec_ one.
                secret=f"shpss_{secrets.token_hex(16)}" if adapter == Adapter.SHOPIFY else None,
            )
            system: ExternalSystem = registered.system
            if system.adapter != adapter:
                raise ValueError(f"{slug} exists with the {system.adapter} adapter; the simulator plays it as {adapter}.")
            if not system.active:
                notes.append(f"{slug} is inactive: the portal refuses its webhooks and sends it nothing.")
            if system.base_url != base_urls.get(slug, system.base_url):
                notes.append(f"{slug} is registered with {system.base_url or 'no base URL'}; deliveries go there, not here.")
            self.systems[slug] = SimulatedSystem(
                slug=slug,
                kind=system.kind,
                adapter=system.adapter,
                secret=system.secret,
                accepted=system.accepted_secrets,
                base_url=system.base_url,
            )
        return notes

    def stop(self) -> None:
        self.stopping.set()
        for server in self._servers.values():
            server.shutdown()  # every server in the list is serving: start() closes those it could not start
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = {}, []
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def ports(self) -> dict[str, int]:
        return {slug: server.server_address[1] for slug, server in self._servers.items()}

    # --- deliveries from the portal -------------------------------------------------------------------

    def handle_delivery(self, slug: str, headers, body: bytes) -> Reply:
        """What the partner answers to one outbox delivery (the server thread waits `stall` before answering)."""
        system = self.systems[slug]
        headers = {name.lower(): value for name, value in headers.items()}
        try:
            standard_verify(system.accepted, body, headers)
        except SignatureRejected:
            with self._lock:
                system.tally.rejected += 1
            return Reply(401)
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        delivery_id = headers["webhook-id"]
        with self._lock:
            if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
                system.tally.rejected += 1
                return Reply(400)
            if delivery_id in system.seen:
                system.tally.duplicates += 1
                return Reply(200)
            fault = self._misbehave(system)
            if fault is not None and fault.status >= 500:
                return fault  # refused before it was taken in: the portal's retry is received as new
            # A stalled answer was taken in all the same: the portal's retry is a duplicate.
            system.seen.add(delivery_id)
            system.tally.received += 1
            self.delivered_types[f"{slug}:{message.get('type')}"] += 1
            self._take_in(system, str(message.get("type") or ""), message["data"])
        return Reply(200, fault.stall if fault else 0.0)

    def _misbehave(self, system: SimulatedSystem) -> Reply | None:
        """At the fault rate: a 500, or a 200 held past the portal's timeout; otherwise None. Under the lock."""
        if self.behaviour_rng.random() >= self.options.fault_rate:
            return None
        if self.behaviour_rng.random() >= self.options.timeout_share:
            system.tally.failed += 1
            return Reply(500)
        system.tally.stalled += 1
        return Reply(200, settings.OUTBOX_TIMEOUT_SECONDS + 1)

    def handle_inventory(self, slug: str, headers, body: bytes = b"") -> Reply:
        """What the WMS answers to the portal's GET /inventory, signed as deliveries are: its counts."""
        system = self.systems[slug]
        if system.kind != SystemKind.WMS:
            return Reply(404)
        headers = {name.lower(): value for name, value in headers.items()}
        try:
            standard_verify(system.accepted, body, headers)
        except SignatureRejected:
            with self._lock:
                system.tally.rejected += 1
            return Reply(401)
        with self._lock:
            fault = self._misbehave(system)
        if fault is not None and fault.status >= 500:
            return fault
        inventory = self.build_inventory()
        with self._lock:
            system.tally.pulls += 1
        return Reply(200, fault.stall if fault else 0.0, inventory)

    def _take_in(self, system: SimulatedSystem, type: str, data: dict) -> None:
        if system.kind == SystemKind.WMS and type == "pick_ticket.created":
            self._hold_ticket(data)
        elif system.kind == SystemKind.WMS and type == "pick_ticket.cancelled":
            shipment_id = data.get("shipment_id")
            self.cancelled.add(shipment_id)
            if shipment_id in self.tickets:
                self.tickets[shipment_id].cancelled = True
        elif system.kind == SystemKind.WMS and type == "count.requested":
            self._schedule(self.behaviour_rng.uniform(*RECOUNT_DELAY), lambda: self.build_recount(data))
        elif system.kind == SystemKind.WMS and type == "label.retry":
            self._relabel(data)
        elif system.kind == SystemKind.ERP and type == "item_fulfillment.created":
            if self.behaviour_rng.random() < self.options.uninvoiced_rate:
                self.uninvoiced += 1
            else:
                self._schedule(self.behaviour_rng.uniform(*INVOICE_DELAY), lambda: self.build_invoice(data))

    def _hold_ticket(self, data: dict) -> None:
        shipment_id = data.get("shipment_id")
        if not isinstance(shipment_id, int) or shipment_id in self.tickets or shipment_id in self.cancelled:
            return
        rng = self.behaviour_rng
        steps = ["shipment.short_picked" if rng.random() < self.options.short_pick_rate else "shipment.picked"]
        steps.append("shipment.packed")
        if rng.random() < self.options.label_failure_rate:
            steps.append("shipment.label_failed")
        steps += ["shipment.shipped", "shipment.delivered"]
        self.tickets[shipment_id] = Ticket(shipment_id, data, steps)
        self._schedule(rng.uniform(*STEP_DELAYS[steps[0]]), lambda: self._next_step(shipment_id))

    def _relabel(self, data: dict) -> None:
        """The label printed again with the carrier and service the portal chose: the parcel leaves with them (its
        shipment.shipped names that carrier). A parcel already gone or a ticket it never had: nothing to do."""
        ticket = self.tickets.get(data.get("shipment_id"))
        if ticket is None or ticket.cancelled or "shipment.shipped" not in ticket.steps:
            return
        ticket.data["carrier"], ticket.data["service"] = data.get("carrier"), data.get("service")

    # --- what is due ----------------------------------------------------------------------------------

    def _schedule(self, delay: float, job: Callable[[], Webhook | None]) -> None:
        with self._lock:
            heapq.heappush(self._due, (self.clock() + delay, next(self._sequence), job))

    def follow_ups(self, now: float | None = None, limit: int | None = None) -> list[Webhook]:
        """The webhooks due by `now` that answer what the portal told us, and the counts and resends."""
        now = self.clock() if now is None else now
        webhooks: list[Webhook] = []
        while limit is None or len(webhooks) < limit:
            with self._lock:
                if not self._due or self._due[0][0] > now:
                    break
                _, _, job = heapq.heappop(self._due)
            webhook = job()
            if webhook is not None:
                webhooks.append(webhook)
        return webhooks

    def next_webhooks(self, budget: int, now: float | None = None) -> list[Webhook]:
        """At most `budget` webhooks: what is due first, new orders with the rest."""
        webhooks = self.follow_ups(now, limit=budget)
        while len(webhooks) < budget and self._skus():
            webhooks.append(self.build_shopify_order())
        return webhooks

    def _next_step(self, shipment_id: int) -> Webhook | None:
        with self._lock:
            ticket = self.tickets[shipment_id]
            if ticket.cancelled or not ticket.steps:
                return None
            topic = ticket.steps.pop(0)
        webhook = self.build_shipment_event(ticket, topic)
        with self._lock:
            if ticket.steps:
                low, high = RELABEL_DELAY if topic == "shipment.label_failed" else STEP_DELAYS[ticket.steps[0]]
                self._schedule(self.behaviour_rng.uniform(low, high), lambda: self._next_step(shipment_id))
        return webhook

    def _count_and_again(self) -> Webhook | None:
        self._schedule(self.options.count_interval, self._count_and_again)
        return self.build_count()

    # --- building webhooks ----------------------------------------------------------------------------

    def _skus(self) -> list[tuple[str, str, Decimal | None]]:
        if self.clock() - self._catalogue_read_at > CATALOGUE_TTL:
            self._catalogue = list(Sku.objects.filter(active=True).order_by("code").values_list("code", "name", "unit_price"))
            self._catalogue_read_at = self.clock()
        return self._catalogue

    def build_shopify_order(self, address: dict | None = None) -> Webhook:
        """An orders/create webhook: Shopify's sample with a fresh id, customer, address (this one, or one drawn
        from the good and, at the bad-address rate, the bad ones) and lines."""
        catalogue = self._skus()
        if not catalogue:
            raise LookupError("The catalogue has no active SKUs to order: import one, or run seed_demo.")
        rng, number = self.order_rng, next(self._ids)
        if address is None:
            bad = rng.random() < self.options.bad_address_rate
            address = rng.choice(BAD_ADDRESSES if bad else GOOD_ADDRESSES)
        address = copy.deepcopy(address)
        first, last = rng.choice(CUSTOMERS)
        # An address of the small set comes back often: a fresh e-mail keeps the portal from taking two
        # orders of the same lines for one customer's duplicate.
        email = f"{first}.{last}+{number}@example.com".lower().replace("-", "")
        address.update(first_name=first, last_name=last, name=f"{first} {last}")
        currency = CURRENCIES[address["country_code"]]
        order = copy.deepcopy(self._sample)
        template = order["line_items"][0]
        lines, subtotal = [], Decimal("0")
        for code, name, unit_price in rng.sample(catalogue, k=rng.randint(1, min(3, len(catalogue)))):
            quantity, price = rng.randint(1, 3), unit_price if unit_price is not None else Decimal("0")
            line_id = next(self._ids)
            line = copy.deepcopy(template)
            line.update(
                id=line_id,
                admin_graphql_api_id=f"gid://shopify/LineItem/{line_id}",
                sku=code,
                name=name,
                title=name,
                price=f"{price:.2f}",
                price_set=_money(price, currency),
                quantity=quantity,
                current_quantity=quantity,
                fulfillable_quantity=quantity,
                total_discount="0.00",
                total_discount_set=_money(Decimal("0"), currency),
                product_id=None,
                attributed_staffs=[],
                discount_allocations=[],
            )
            lines.append(line)
            subtotal += price * quantity
        shipping = Decimal("10.00")
        stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
        order.update(
            id=number,
            admin_graphql_api_id=f"gid://shopify/Order/{number}",
            name=f"#{number % 100000}",
            number=number % 100000,
            order_number=1000 + number % 100000,
            token=uuid.uuid4().hex,
            created_at=stamp,
            updated_at=stamp,
            processed_at=stamp,
            # The sample is a cancelled test order; a new order of a live shop is neither.
            cancel_reason=None,
            cancelled_at=None,
            test=False,
            confirmed=True,
            financial_status="paid",
            email=email,
            contact_email=email,
            currency=currency,
            presentment_currency=currency,
            line_items=lines,
            shipping_address=address,
            billing_address=copy.deepcopy(address),
            total_line_items_price=f"{subtotal:.2f}",
            total_line_items_price_set=_money(subtotal, currency),
            subtotal_price=f"{subtotal:.2f}",
            subtotal_price_set=_money(subtotal, currency),
            current_subtotal_price=f"{subtotal:.2f}",
            current_subtotal_price_set=_money(subtotal, currency),
            total_discounts="0.00",
            total_discounts_set=_money(Decimal("0"), currency),
            total_shipping_price_set=_money(shipping, currency),
            total_price=f"{subtotal + shipping:.2f}",
            total_price_set=_money(subtotal + shipping, currency),
            current_total_price=f"{subtotal + shipping:.2f}",
            current_total_price_set=_money(subtotal + shipping, currency),
            total_outstanding="0.00",
        )
        customer = order["customer"]
        customer.update(
            id=next(self._ids), first_name=first, last_name=last, email=email, currency=currency, default_address=address
        )
        customer["admin_graphql_api_id"] = f"gid://shopify/Customer/{customer['id']}"
        with self._lock:
            self._currencies[str(number)] = currency
        return Webhook(STOREFRONT, "orders/create", str(uuid.uuid4()), json.dumps(order).encode())

    def _envelope(self, slug: str, type: str, data: dict) -> Webhook:
        body = json.dumps({"type": type, "occurred_at": _now_iso(), "data": data}, separators=(",", ":")).encode()
        return Webhook(slug, type, f"msg_{uuid.uuid4().hex}", body)

    def build_shipment_event(self, ticket: Ticket, topic: str) -> Webhook:
        data: dict = {"shipment_id": ticket.shipment_id}
        if topic in ("shipment.picked", "shipment.short_picked"):
            data["location"] = ticket.data.get("location")
        if topic == "shipment.short_picked":
            lines = [line for line in ticket.data.get("lines", []) if isinstance(line, dict)]
            # One unit short on the line of most units, so that the rest of the shipment can still go.
            short = max(lines, key=lambda line: line.get("quantity", 0), default=None)
            data["lines"] = [
                {"order_line_id": line["order_line_id"], "picked": line["quantity"] - 1 if line is short else line["quantity"]}
                for line in lines
            ]
            if not any(line["picked"] for line in data["lines"]):
                ticket.steps.clear()  # nothing was picked: the portal cancels the shipment
        elif topic == "shipment.label_failed":
            data["reason"] = self.behaviour_rng.choice(LABEL_FAILURES)
        elif topic == "shipment.shipped":
            country = str((ticket.data.get("ship_to") or {}).get("country") or "US")
            data["carrier"] = ticket.data.get("carrier") or self.behaviour_rng.choice(CARRIERS.get(country, CARRIERS["US"]))
            data["tracking_number"] = f"SIM{ticket.shipment_id:06d}{self.behaviour_rng.randrange(10**8):08d}"
        return self._envelope(WMS, topic, data)

    def build_invoice(self, fulfillment: dict) -> Webhook:
        """invoice.posted for a shipment the ERP heard of (item_fulfillment.created)."""
        lines = [(str(line.get("sku")), int(line.get("quantity", 0))) for line in fulfillment.get("lines", [])]
        prices = dict(Sku.objects.filter(code__in=[code for code, _ in lines]).values_list("code", "unit_price"))
        amount = sum(((prices.get(code) or Decimal("0")) * quantity for code, quantity in lines), Decimal("0"))
        ours = fulfillment.get("partner") == STOREFRONT
        with self._lock:
            currency = self._currencies.get(str(fulfillment.get("external_id")), "USD") if ours else "USD"
        data = {
            "invoice_number": f"SIM-{fulfillment['shipment_id']}",
            "shipment_id": fulfillment["shipment_id"],
            "order_id": fulfillment.get("order_id"),
            "amount": f"{amount:.2f}",
            "currency": currency,
        }
        return self._envelope(ERP, "invoice.posted", data)

    def _run_locations(self):
        """The active locations the WMS runs, as the portal has it: those it names, or every one if it names none."""
        locations = Location.objects.filter(active=True)
        named = Location.objects.filter(external_systems__slug=WMS)
        return locations.filter(pk__in=named) if named.exists() else locations

    def _counted_levels(self):
        return StockLevel.objects.filter(location__in=self._run_locations(), sku__active=True)

    def build_count(self) -> Webhook | None:
        """inventory.counted for one location the WMS runs, from the portal's on-hand figures, a few of them off."""
        levels = self._counted_levels()
        locations = sorted(set(levels.values_list("location__code", flat=True)))
        if not locations:
            return None
        location = self.behaviour_rng.choice(locations)
        rows = list(levels.filter(location__code=location).order_by("sku__code").values_list("sku__code", "on_hand"))
        counts = []
        for code, on_hand in self.behaviour_rng.sample(rows, k=min(COUNTED_SKUS, len(rows))):
            if self.behaviour_rng.random() < self.options.count_drift_rate:
                on_hand = max(0, on_hand + self.behaviour_rng.choice((-3, -2, -1, 1, 2, 3)))
            counts.append({"sku": code, "quantity": on_hand})
        return self._envelope(WMS, "inventory.counted", {"location": location, "counts": counts})

    def on_shelf(self, location: str, sku: str, on_hand: int) -> int:
        """What the WMS believes is on the shelf where the portal has `on_hand`: the same, but for the share of
        figures it has wrong. It answers the same figure of ours the same way, so a drift is reported again until
        either side moves; a recount that agreed with ours holds until ours changes."""
        with self._lock:
            if self._recounted.get((location, sku)) == on_hand:
                return on_hand
        rng = random.Random(f"{self._shelf_seed}:{location}:{sku}:{on_hand}")
        if rng.random() >= self.options.count_drift_rate:
            return on_hand
        off = max(1, round(on_hand * rng.uniform(*SHELF_DRIFT)))
        return max(0, on_hand + rng.choice((-1, 1)) * off)

    def build_inventory(self) -> dict:
        """GET /inventory's answer: every SKU at every location the WMS runs, as it believes they stand."""
        rows = self._counted_levels().order_by("location__code", "sku__code")
        locations: dict[str, list[dict]] = {}
        for location, code, on_hand in rows.values_list("location__code", "sku__code", "on_hand"):
            locations.setdefault(location, []).append({"sku": code, "quantity": self.on_shelf(location, code, on_hand)})
        return {
            "counted_at": _now_iso(),
            "locations": [{"location": location, "counts": counts} for location, counts in locations.items()],
        }

    def build_recount(self, request: dict) -> Webhook | None:
        """inventory.counted for the one SKU a count.requested names: counted with care, it finds the portal's
        on-hand. Nothing for a location the WMS does not run or a SKU it has never heard of."""
        location, sku = str(request.get("location") or ""), str(request.get("sku") or "")
        if not self._run_locations().filter(code=location).exists() or not Sku.objects.filter(code=sku).exists():
            return None
        level = StockLevel.objects.filter(location__code=location, sku__code=sku).values_list("on_hand", flat=True)
        on_hand = level.first() or 0
        with self._lock:
            self._recounted[(location, sku)] = on_hand
        return self._envelope(WMS, "inventory.counted", {"location": location, "counts": [{"sku": sku, "quantity": on_hand}]})

    # --- sending --------------------------------------------------------------------------------------

    def signed_headers(self, webhook: Webhook) -> dict[str, str]:
        system = self.systems[webhook.slug]
        headers = {"content-type": "application/json", "user-agent": "fulfillment-partner-simulator"}
        if system.adapter == Adapter.SHOPIFY:
            return {
                **headers,
                "X-Shopify-Topic": webhook.topic,
                "X-Shopify-Hmac-Sha256": shopify_signature(system.secret, webhook.body),
                "X-Shopify-Webhook-Id": webhook.message_id,
                "X-Shopify-Triggered-At": _now_iso(),
                "X-Shopify-Shop-Domain": "sim-shop.myshopify.com",
                "X-Shopify-API-Version": "2025-01",
            }
        return {**headers, **standard_headers(system.secret, message_id=webhook.message_id, body=webhook.body)}

    def send(self, webhook: Webhook) -> int | None:
        """Post one webhook to the portal, signed afresh; the status code, or None when no answer came."""
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0))
        system = self.systems[webhook.slug]
        if webhook.attempts == 0:
            self.sent[webhook.topic] += 1
        webhook.attempts += 1
        try:
            status = self._http.post(
                system.webhook_url(self.options.portal_url), content=webhook.body, headers=self.signed_headers(webhook)
            ).status_code
        except httpx.HTTPError as error:
            self.answers[type(error).__name__] += 1
            status = None
        else:
            self.answers[str(status)] += 1
        if (status is None or status >= 500 or status == 429) and webhook.attempts < SEND_ATTEMPTS:
            self._schedule(RESEND_AFTER * 2 ** (webhook.attempts - 1), lambda: webhook)
        return status

    # --- running --------------------------------------------------------------------------------------

    def summary(self) -> str:
        with self._lock:
            sent = " ".join(f"{topic}={n}" for topic, n in sorted(self.sent.items())) or "nothing"
            answers = " ".join(f"{status}={n}" for status, n in sorted(self.answers.items())) or "none"
            systems = "; ".join(f"{slug}: {system.tally}" for slug, system in self.systems.items())
            uninvoiced = self.uninvoiced
        elapsed = int(self.clock() - self.started_at)
        return (
            f"[{elapsed // 60:02d}:{elapsed % 60:02d}] sent {sent} | portal answered {answers} | "
            f"deliveries {systems} | left uninvoiced {uninvoiced}"
        )

    def wait_for_portal(self, write: Callable[[str], None], *, timeout: float = 120.0) -> bool:
        """Wait until the portal answers at all (it may still be starting), while deliveries are accepted."""
        deadline = self.clock() + timeout
        told = False
        while not self.stopping.is_set() and self.clock() < deadline:
            try:
                httpx.get(f"{self.options.portal_url.rstrip('/')}/healthz", timeout=2.0)
                return True
            except httpx.HTTPError:
                if not told:
                    write(f"Waiting for the portal at {self.options.portal_url} ...")
                    told = True
                self.stopping.wait(1.0)
        return False

    def run(self, *, duration: float = 0, write: Callable[[str], None] = print, summary_every: float = 10.0) -> None:
        """Send at the rate until `duration` seconds have passed (0: until stopped), a summary line every 10 s."""
        for note in self.start():
            write(f"Note: {note}")
        for slug, port in self.ports.items():
            to = self.systems[slug].webhook_url(self.options.portal_url)
            write(f"{slug} listens on http://{self.options.host}:{port}/ and posts to {to}")
        if not self._skus():
            write("Note: the catalogue has no active SKUs, so no new orders are sent (import one, or run seed_demo).")
        try:
            if not self.wait_for_portal(write):
                write(f"The portal at {self.options.portal_url} did not answer.")
                return
            self.started_at = last = self.clock()
            end = last + duration if duration else float("inf")
            next_summary, tokens = last + summary_every, 0.0
            while not self.stopping.is_set() and self.clock() < end:
                now = self.clock()
                # At most a second's worth at once: a pause (a slow portal) is not made up in a burst.
                tokens = min(tokens + self.options.rate * (now - last), max(1.0, self.options.rate))
                last = now
                for webhook in self.next_webhooks(int(tokens), now=now):
                    self.send(webhook)
                    tokens -= 1
                if self.clock() >= next_summary:
                    write(self.summary())
                    next_summary += summary_every
                self.stopping.wait(0.05)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            write(f"Final: {self.summary()}")


def _handler_for(simulator: Simulator, slug: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"{slug}-simulator"

        def do_POST(self) -> None:
            reply = simulator.handle_delivery(slug, dict(self.headers.items()), self._body())
            if reply.stall:
                simulator.stopping.wait(reply.stall)
            self._answer(reply.status, {"status": reply.status})

        def do_GET(self) -> None:
            system = simulator.systems.get(slug)
            if system is not None and urlsplit(self.path).path.rstrip("/") == "/inventory":
                try:
                    reply = simulator.handle_inventory(slug, dict(self.headers.items()), self._body())
                finally:
                    connections.close_all()  # this thread's own: the server starts a thread per request
                if reply.stall:
                    simulator.stopping.wait(reply.stall)
                self._answer(reply.status, reply.payload if reply.payload is not None else {"status": reply.status})
                return
            self._answer(200, {"system": slug, **(system.tally.__dict__ if system else {})})

        def _body(self) -> bytes:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            return self.rfile.read(length) if length > 0 else b""

        def _answer(self, status: int, payload: dict) -> None:
            content = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the portal gave up waiting, as a stalled answer means it to

        def log_message(self, format: str, *args) -> None:
            pass  # the summary lines say what came in

    return Handler
