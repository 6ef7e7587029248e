"""Drift between the three systems' counts: the WMS's physical count against our ledger, with the storefront's
last figure beside them.

The WMS owns physical counts. A count within the location's tolerance of ours is taken as it is (a
sync_correction in the ledger); further off, an inventory_drift exception opens for the stock team, who
accept the count, keep ours with a reason, or ask the WMS to count again. Counts arrive as `inventory.counted`
webhooks and from a periodic pull of the WMS's `GET {base_url}/inventory`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.actors import Actor
from core.errors import Conflict
from exceptions.models import OPEN_STATUSES, ExceptionStatus, FulfillmentException
from exceptions.services import exception_lock, exception_raise, exception_resolve, exception_resume, exception_wait
from inventory.models import Location, Sku, StockLevel
from orders.services.counts import stock_count_accept

from ..errors import IntegrationError
from ..models import ExternalSystem, InboundEvent, ReportedStock, SystemKind
from ..selectors import storefront_figure
from ..signatures import standard_headers
from .outbox import MessageType, outbox_write, wms_for

logger = logging.getLogger(__name__)

DRIFT = "inventory_drift"


class UnreadableCounts(Exception):
    """A count message names a location or SKU we do not know, or is not shaped as counts are."""


def read_counts(system: ExternalSystem, data: dict) -> tuple[Location, dict[Sku, int]]:
    """`{"location": "WH-EAST", "counts": [{"sku": "MUG-1", "quantity": 40}, ...]}` → the location and the counts."""
    code = data.get("location")
    location = Location.objects.filter(code=str(code)).first() if code not in (None, "") else None
    if location is None:
        raise UnreadableCounts(f"There is no location {code}." if code else "The counts name no location.")
    if system.locations.exists() and not system.locations.filter(pk=location.pk).exists():
        raise UnreadableCounts(f"{system.slug} does not run {location.code}.")
    counts = data.get("counts")
    if not isinstance(counts, list):
        raise UnreadableCounts("counts is not a list.")
    wanted: dict[str, int] = {}
    for number, entry in enumerate(counts, start=1):
        if not isinstance(entry, dict) or entry.get("sku") in (None, ""):
            raise UnreadableCounts(f"Count {number} is not an object with sku and quantity.")
        quantity = entry.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise UnreadableCounts(f"Count {number} ({entry['sku']}): quantity must be a whole number, zero or more.")
        if str(entry["sku"]) in wanted:
            raise UnreadableCounts(f"SKU {entry['sku']} is counted twice.")
        wanted[str(entry["sku"])] = quantity
    skus = {sku.code: sku for sku in Sku.objects.filter(code__in=wanted)}
    unknown = sorted(set(wanted) - set(skus))
    if unknown:
        raise UnreadableCounts(f"There is no SKU {unknown[0]}.")
    return location, {skus[code]: quantity for code, quantity in wanted.items()}


# --- comparing -----------------------------------------------------------------------------------------


@dataclass
class Reconciled:
    matched: int = 0
    corrected: int = 0
    drifted: list[FulfillmentException] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.matched} matched, {self.corrected} corrected within tolerance, {len(self.drifted)} beyond it"


def _open_drift(location: Location, sku: Sku) -> FulfillmentException | None:
    return FulfillmentException.objects.filter(
        type__code=DRIFT, location=location, sku=sku, order__isnull=True, status__in=OPEN_STATUSES
    ).first()


def _settle_open_drift(location: Location, sku: Sku, *, note: str, actor: Actor) -> None:
    drift = _open_drift(location, sku)
    if drift is not None:
        exception_resolve(exception=drift, note=note, action="count_agrees", actor=actor)


def counts_reconcile_locked(
    *,
    system: ExternalSystem,
    location: Location,
    counts: dict[Sku, int],
    counted_at: datetime,
    event: InboundEvent | None = None,
) -> Reconciled:
    """Record the WMS's counts and compare each with ours. Runs in the caller's transaction."""
    actor = Actor.external(system.slug)
    result = Reconciled()
    levels = {level.sku_id: level for level in StockLevel.objects.filter(location=location, sku__in=list(counts))}
    for sku, counted in sorted(counts.items(), key=lambda item: item[0].code):
        ReportedStock.objects.update_or_create(
            system=system,
            item_ref=sku.code,
            location_ref=location.code,
            defaults={"sku": sku, "location": location, "quantity": counted, "reported_at": counted_at, "event": event},
        )
        level = levels.get(sku.pk)
        ours = level.on_hand if level else 0
        if counted == ours:
            result.matched += 1
            _settle_open_drift(location, sku, note=f"{system.slug} counted {counted}, as we have.", actor=actor)
        elif location.drift_within_tolerance(ours, counted):
            stock_count_accept(
                location=location,
                sku=sku,
                counted=counted,
                actor=actor,
                source_system=system.kind,
                reference=f"count:{system.slug}",
            )
            result.corrected += 1
            _settle_open_drift(
                location, sku, note=f"{system.slug} counted {counted} against our {ours}: within tolerance, taken.", actor=actor
            )
        else:
            result.drifted.append(_raise_drift(system, location, sku, ours=ours, counted=counted, at=counted_at, event=event))
    return result


def _raise_drift(
    system: ExternalSystem, location: Location, sku: Sku, *, ours: int, counted: int, at: datetime, event: InboundEvent | None
) -> FulfillmentException:
    actor = Actor.external(system.slug)
    shop = storefront_figure(location_id=location.pk, sku_id=sku.pk)
    difference = counted - ours
    share = f", {abs(difference) * 100 / ours:.0f}%" if ours else ""
    exception = exception_raise(
        code=DRIFT,
        location=location,
        sku=sku,
        actor=actor,
        source_system=system.kind,
        summary=f"{system.slug} counted {counted} of {sku.code} at {location.code}; we have {ours} ({difference:+d}{share})",
        detail={
            "system": system.slug,
            "ours": ours,
            "counted": counted,
            "counted_at": at.isoformat(),
            "storefront": shop.quantity if shop else None,
            "inbound_event": event.pk if event else None,
        },
    )
    if exception.status == ExceptionStatus.WAITING:  # the recount it waited for is here
        exception_resume(exception=exception, actor=actor, note=f"{system.slug} counted again: {counted}.")
    return exception


# --- the pull ------------------------------------------------------------------------------------------


@dataclass
class Pulled:
    system: str
    locations: int = 0
    result: Reconciled = field(default_factory=Reconciled)
    errors: list[str] = field(default_factory=list)


def wms_counts_pull(system: ExternalSystem, *, client: httpx.Client | None = None) -> Pulled:
    """GET the WMS's counts and reconcile each location's in a transaction of its own.

    The request is signed as deliveries are (Standard Webhooks headers over an empty body), so the WMS knows it
    is us. A location the WMS does not run, or a SKU we do not know, is reported and skipped; the rest is taken.
    """
    pulled = Pulled(system.slug)
    url = urljoin(system.base_url if system.base_url.endswith("/") else system.base_url + "/", "inventory")
    headers = standard_headers(system.secret, message_id=f"pull_{uuid.uuid4().hex}", body=b"")
    try:
        http = client or httpx.Client(timeout=httpx.Timeout(settings.OUTBOX_TIMEOUT_SECONDS))
        try:
            answer = http.get(url, headers=headers)
        finally:
            if client is None:
                http.close()
        answer.raise_for_status()
        body = answer.json()
    except (httpx.HTTPError, ValueError) as failure:
        pulled.errors.append(f"{url}: {type(failure).__name__}: {failure}"[:300])
        return pulled
    counted_at = parse_datetime(str(body.get("counted_at") or "")) if isinstance(body, dict) else None
    counted_at = counted_at or timezone.now()
    for entry in body.get("locations", []) if isinstance(body, dict) else []:
        try:
            with transaction.atomic():
                location, counts = read_counts(system, entry if isinstance(entry, dict) else {})
                part = counts_reconcile_locked(system=system, location=location, counts=counts, counted_at=counted_at)
        except UnreadableCounts as unreadable:
            pulled.errors.append(str(unreadable))
            continue
        pulled.locations += 1
        pulled.result.matched += part.matched
        pulled.result.corrected += part.corrected
        pulled.result.drifted.extend(part.drifted)
    return pulled


def wms_counts_pull_all() -> list[Pulled]:
    systems = ExternalSystem.objects.filter(kind=SystemKind.WMS, adapter="generic_wms", active=True).exclude(base_url="")
    results = [wms_counts_pull(system) for system in systems.order_by("pk")]
    for pulled in results:
        for error in pulled.errors:
            logger.warning("WMS count pull from %s: %s", pulled.system, error)
    return results


# --- the governed actions on an inventory_drift --------------------------------------------------------


def _figures(exception: FulfillmentException) -> tuple[int, int]:
    detail = exception.detail or {}
    return int(detail.get("ours") or 0), int(detail["counted"])


@transaction.atomic
def exception_accept_count(*, exception: FulfillmentException, actor: Actor, note: str = "", operator_minutes: int = 0) -> str:
    """Take the WMS's count: a ledger entry, and orders the count no longer covers are routed again."""
    exception = exception_lock(exception)
    _, counted = _figures(exception)
    outcome = stock_count_accept(
        location=exception.location,
        sku=exception.sku,
        counted=counted,
        actor=actor,
        source_system=SystemKind.WMS,
        reference=f"exception:{exception.pk}",
    )
    message = f"Accepted the count of {counted}. {outcome.summary}"
    exception_resolve(
        exception=exception,
        note=f"{message} {note}".strip(),
        action="accept_count",
        actor=actor,
        operator_minutes=operator_minutes,
    )
    return message


@transaction.atomic
def exception_keep_ours(*, exception: FulfillmentException, reason: str, actor: Actor, operator_minutes: int = 0) -> str:
    exception = exception_lock(exception)
    ours = StockLevel.objects.filter(location_id=exception.location_id, sku_id=exception.sku_id).first()
    kept = ours.on_hand if ours else 0
    exception_resolve(
        exception=exception,
        note=f"Kept our figure of {kept}: {reason}",
        action="keep_ours",
        actor=actor,
        operator_minutes=operator_minutes,
    )
    return f"Kept our figure of {kept}."


@transaction.atomic
def exception_request_recount(*, exception: FulfillmentException, actor: Actor, note: str = "", operator_minutes: int = 0) -> str:
    """Ask the WMS that runs the location to count the SKU again; the exception waits for the answer."""
    exception = exception_lock(exception)
    receivers = wms_for(exception.location_id)
    if not receivers:
        raise Conflict(
            IntegrationError.NOTHING_TO_RETRY,
            f"No active WMS with an address runs {exception.location.code}: ask for the count another way.",
        )
    ours, counted = _figures(exception)
    outbox_write(
        type=MessageType.COUNT_REQUESTED,
        payload={
            "location": exception.location.code,
            "sku": exception.sku.code,
            "exception_id": exception.pk,
            "our_figure": ours,
            "last_count": counted,
            "note": note,
        },
        receivers=receivers,
    )
    asked = ", ".join(system.slug for system in receivers)
    exception_wait(
        exception=exception,
        note=f"Asked {asked} to count {exception.sku.code} at {exception.location.code} again. {note}".strip(),
        actor=actor,
        operator_minutes=operator_minutes,
    )
    return f"Asked {asked} for a recount; the exception waits for it."
