"""One history in plain words: an order's events with those of its exceptions, or an exception's with its order's.

Each entry is a sentence saying who did what ("Coordinator ann put the order on hold: address check"),
not a transition code. A person is named by role and name, their roles read in one query for the
whole timeline; a system or a job by what it is. An event this module does not know still reads as
a sentence. Order events are known here only through the order's `events` relation: this app does
not import orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain

from django.contrib.auth import get_user_model

from core.actors import ActorKind
from core.roles import Role

from .models import ExceptionEvent, FulfillmentException

ROLE_WORDS = {Role.COORDINATOR: "Coordinator", Role.CUSTOMER_SERVICE: "Customer service", Role.OPS_ADMIN: "Ops admin"}
# Systems and jobs by what people call them, matched on a word of their name ("sim-wms", "job:wms").
SYSTEM_WORDS = {
    "wms": "The warehouse",
    "warehouse": "The warehouse",
    "erp": "The ERP",
    "carrier": "The carrier",
    "shop": "The storefront",
    "storefront": "The storefront",
}
JOB_WORDS = {
    "release_wave": "The release wave",
    "outbox": "The outbox relay",
    "invoice_watch": "The invoice watch",
    "seed_demo": "The demo data",
}


@dataclass(frozen=True)
class TimelineEntry:
    at: object
    source: str  # "order" or "exception"
    title: str
    actor: str
    note: str
    detail: dict


# --- who ---------------------------------------------------------------------------------------------


def _words(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip()


def _system_name(name: str) -> str | None:
    for part in _words(name).lower().split():
        if part in SYSTEM_WORDS:
            return SYSTEM_WORDS[part]
    return None


def _roles_of(actors: Iterable[str]) -> dict[str, str]:
    """The role word of each person among `actors` ("user:<name>"), read in one query."""
    prefix = f"{ActorKind.USER}:"
    usernames = {actor.removeprefix(prefix) for actor in actors if actor.startswith(prefix)}
    if not usernames:
        return {}
    found: dict[str, list[str]] = {}
    rows = get_user_model().objects.filter(username__in=usernames).values_list("username", "is_superuser", "groups__name")
    for username, is_superuser, group in rows:
        roles = found.setdefault(username, [])
        if group in ROLE_WORDS:
            roles.append(group)
        elif is_superuser and not roles:
            roles.append("")
    words = {}
    for username, roles in found.items():
        known = [role for role in Role if role in roles]
        words[username] = ROLE_WORDS[known[0]] if known else ("Admin" if "" in roles else "User")
    return words


def describe_actor(actor: str, roles: dict[str, str]) -> str:
    """How a sentence names an actor string (core.actors): "Coordinator ann", "The warehouse", "System"."""
    kind, _, name = actor.partition(":")
    if not name:
        return "System" if kind == ActorKind.SYSTEM else actor or "Someone"
    if kind == ActorKind.USER:
        return f"{roles.get(name, 'User')} {name}"
    if kind == ActorKind.PARTNER:
        return f"Partner {name}"
    if kind == ActorKind.SYSTEM:
        return _system_name(name) or f"The {_words(name)} system"
    if kind == ActorKind.JOB:
        return JOB_WORDS.get(name) or _system_name(name) or f"The {_words(name)} job"
    return actor


# --- what: order events ------------------------------------------------------------------------------


def _reason(data: dict) -> str:
    reason = data.get("reason") or data.get("note") or ""
    return f": {reason}" if reason else ""


ORDER_TRANSITIONS = {
    "mark_ready": "checked the order: it is ready to allocate",
    "hold": "put the order on hold{reason}",
    "release_hold": "released the hold{reason}",
    "allocate": "allocated the order",
    "propose_split": "proposed a split, waiting for approval",
    "approve_split": "approved the split",
    "reject_split": "rejected the split{reason}",
    "backorder": "backordered the order",
    "retry_allocation": "tried the allocation again",
    "reallocate": "gave the order's plan back to plan it again{reason}",
    "release": "released the order to the warehouse",
    "ship_part": "marked the order partially shipped",
    "ship": "marked the order shipped{reason}",
    "deliver": "marked the order delivered",
    "cancel": "cancelled the order{reason}",
}
SHIPMENT_TRANSITIONS = {
    "planned": "planned shipment {shipment} from {location}",
    "release": "released shipment {shipment} from {location}",
    "pick": "picked shipment {shipment} at {location}",
    "pack": "packed shipment {shipment} at {location}",
    "ship": "shipped shipment {shipment} from {location}",
    "deliver": "delivered shipment {shipment} from {location}",
    "cancel": "cancelled shipment {shipment} from {location}{reason}",
}


def _order_action(event) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    line = data.get("line")
    if event.name == "cancel_line":
        if "owed_units" in data:
            return f"cancelled the {data['owed_units']} unit(s) line {line} still owed{_reason(data)}"
        return f"cancelled line {line} ({data.get('sku', '')}){_reason(data)}"
    if event.name == "substitute_sku":
        before, after = data.get("before") or {}, data.get("after") or {}
        return f"substituted {after.get('sku', '')} for {before.get('sku', '')} on line {line}"
    if event.name == "change_address":
        return "changed the shipping address"
    if event.name == "correct_address":
        return "corrected the shipping address"
    if event.name == "address_change_requested":
        return "asked to change the shipping address after the order went to the warehouse"
    if event.name == "accept_price":
        return f"accepted the partner's unit price {data.get('unit_price', '')} on line {line}{_reason(data)}"
    if event.name == "short_pick":
        return f"reported a short pick on shipment {data.get('shipment', '')}"
    if event.name == "delivery_requeued":
        return f"sent a message to {data.get('system', 'another system')} again"
    return f"recorded {_words(event.name)} on the order"


def _order_sentence(event) -> tuple[str, str]:
    """What an order event says, and the note shown under it."""
    data = event.data if isinstance(event.data, dict) else {}
    kind = event.kind
    if kind == "created":
        return "sent the order in" if event.actor.startswith(f"{ActorKind.PARTNER}:") else "created the order", ""
    if kind == "transition" and event.name in ORDER_TRANSITIONS:
        return ORDER_TRANSITIONS[event.name].format(reason=_reason(data)), ""
    if kind == "shipment" and event.name in SHIPMENT_TRANSITIONS:
        location = event.shipment.location.code if event.shipment_id else "?"
        sentence = SHIPMENT_TRANSITIONS[event.name].format(shipment=event.shipment_id, location=location, reason=_reason(data))
        tracking = event.shipment.tracking_number if event.name == "ship" and event.shipment_id else ""
        return (f"{sentence} ({event.shipment.carrier} {tracking})" if tracking else sentence), ""
    if kind == "action":
        return _order_action(event), ""
    if kind == "note":
        return "commented on the order", data.get("note", "")
    if kind == "outbound" and event.name == "release_to_wms":
        return "sent the pick tickets to the warehouse", ""
    if kind == "outbound" and event.name == "cancel_to_wms":
        return f"told the warehouse to stop work on the order{_reason(data)}", ""
    if kind == "inbound":
        return f"reported {event.name}", ""
    return f"recorded “{_words(event.name)}” ({event.get_kind_display().lower()}) on the order", ""


# --- what: exception events --------------------------------------------------------------------------

CLOSING = {
    "resolve": "resolved {what}",
    "dismiss": "dismissed {what}",
    "wait": "set {what} to wait",
    "resume": "resumed {what}",
    "reopen": "reopened {what}",
}
BY_STATUS = {
    "resolved": "resolved {what}",
    "dismissed": "dismissed {what}",
    "waiting": "set {what} to wait",
    "in_progress": "took up {what}",
    "open": "reopened {what}",
}


def _exception_sentence(event: ExceptionEvent, what: str) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    K = ExceptionEvent.Kind
    if event.kind == K.CREATED:
        summary = data.get("summary", "")
        return f"raised {what}" + (f": {summary}" if summary else "")
    if event.kind == K.OCCURRED:
        return f"saw {what} again ({data.get('occurrences', '')} times)"
    if event.kind == K.ASSIGNED:
        return f"assigned {what} to {data.get('owner', 'someone')}"
    if event.kind == K.CLAIMED:
        return f"claimed {what}"
    if event.kind == K.COMMENTED:
        return f"commented on {what}"
    if event.kind == K.STATUS_CHANGED:
        if event.action in CLOSING:
            return CLOSING[event.action].format(what=what)
        by_status = BY_STATUS.get(event.to_status, "changed {what}")
        return by_status.format(what=what) + (f" ({_words(event.action)})" if event.action else "")
    if event.kind == K.ESCALATED:
        return (
            f"escalated {what} to {data.get('to_queue', 'another queue')}, "
            f"priority {data.get('from_priority', '')} → {data.get('to_priority', '')}"
        )
    if event.kind == K.SLA_WARNED:
        return f"warned that {what} is close to its deadline"
    if event.kind == K.SLA_BREACHED:
        return f"recorded that {what} missed its deadline"
    if event.kind == K.ACTION and event.action == "set_priority":
        return f"changed the priority of {what} from {data.get('from_priority', '')} to {data.get('to_priority', '')}"
    if event.kind == K.ACTION and event.action:
        return f"took the action “{_words(event.action)}” on {what}"
    return f"recorded “{event.get_kind_display().lower()}” on {what}"


def _capitalised(subject: str, rest: str) -> str:
    sentence = f"{subject} {rest}"
    return sentence[0].upper() + sentence[1:]


def timeline(*, order=None, exception: FulfillmentException | None = None) -> list[TimelineEntry]:
    """One history, newest first: an exception's events with its order's, or an order's events with those of all
    its exceptions (each named by its type). A fixed number of queries, however long the history."""
    if exception is not None:
        exception_events = list(ExceptionEvent.objects.filter(exception=exception))
        the_order = exception.order if exception.order_id else None
    else:
        exception_events = list(ExceptionEvent.objects.filter(exception__order=order).select_related("exception__type"))
        the_order = order
    order_events = list(the_order.events.select_related("shipment__location")) if the_order is not None else []
    roles = _roles_of({event.actor for event in chain(exception_events, order_events)})

    entries = []
    for event in order_events:
        sentence, note = _order_sentence(event)
        who = describe_actor(event.actor, roles)
        entries.append(TimelineEntry(event.at, "order", _capitalised(who, sentence), event.actor, note, event.data))
    for event in exception_events:
        what = "the exception" if exception is not None else f"the {event.exception.type.name} exception"
        sentence = _exception_sentence(event, what)
        if event.operator_minutes:
            sentence += f" ({event.operator_minutes} min)"
        who = describe_actor(event.actor, roles)
        entries.append(TimelineEntry(event.at, "exception", _capitalised(who, sentence), event.actor, event.note, event.data))
    return sorted(entries, key=lambda entry: entry.at, reverse=True)
