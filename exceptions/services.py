"""Exception use cases: raise (with dedupe, priority, queue, SLA, auto-assignment),
the governed changes people make, and the SLA sweep.

Lock order everywhere: the exception's order first (when it has one), then the
exception. Hooks into the orders app lock the order, so taking it first keeps
two services from waiting on each other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import QueryDict
from django.utils import timezone

from core.actors import SYSTEM, Actor
from core.business_calendar import add_business_minutes, business_minutes_between
from core.errors import Conflict, InvalidInput, NotFound
from core.fsm import run_transition
from core.priority import Priority
from core.roles import Role

from . import events, hooks
from .errors import ALREADY_CLOSED, NOTE_REQUIRED, REASON_REQUIRED, ExceptionError
from .models import (
    OPEN_STATUSES,
    ExceptionStatus,
    ExceptionType,
    FulfillmentException,
    Presence,
    Queue,
    SavedView,
    Severity,
    SlaPolicy,
)

# --- priority -----------------------------------------------------------------------

SEVERITY_POINTS = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
TIER_POINTS = {"standard": 0, "priority": 1, "strategic": 2}
SERVICE_POINTS = {"standard": 0, "express": 1, "same_day": 2}
ORDER_VALUE_POINTS = [(5000, 2), (1000, 1)]  # order total at or above -> points
PRIORITY_BY_POINTS = [(5, Priority.P1), (3, Priority.P2), (1, Priority.P3)]  # points at or above -> priority; else P4


def exception_priority(*, severity: str, customer_tier: str = "standard", service_level: str = "standard", order_value=0) -> str:
    """P1–P4 from how bad the problem is and how much the order matters.

    Points: severity (low 0 … critical 3) + customer tier (strategic 2, priority 1)
    + service level (same day 2, express 1) + order value (≥ 5,000: 2, ≥ 1,000: 1).
    5 or more is P1, 3–4 P2, 1–2 P3, 0 P4.
    """
    points = SEVERITY_POINTS.get(severity, 1) + TIER_POINTS.get(customer_tier, 0) + SERVICE_POINTS.get(service_level, 0)
    points += next((p for threshold, p in ORDER_VALUE_POINTS if (order_value or 0) >= threshold), 0)
    return next((priority for threshold, priority in PRIORITY_BY_POINTS if points >= threshold), Priority.P4)


# --- SLA --------------------------------------------------------------------------------

# Used when an exception type has no policy for a priority: (first response, resolve) minutes.
FALLBACK_SLA_MINUTES = {Priority.P1: (30, 240), Priority.P2: (60, 480), Priority.P3: (240, 1440), Priority.P4: (480, 4320)}
FALLBACK_WARNING_PERCENT = 75


def _working_calendar(policy: SlaPolicy | None, *moments: datetime):
    """The policy's calendar, with holidays for every year a clock measured from ``moments`` reaches.

    A deadline falls hours or weeks after its start, so the years of the moments and the year after
    are enough even across New Year; the year before too, because the calendar's local date can
    still be 31 December when the UTC instant is already in January.
    """
    if not (policy and policy.calendar_id):
        return None
    years = range(min(moment.year for moment in moments) - 1, max(moment.year for moment in moments) + 2)
    return policy.calendar.working_calendar(years=years)


def sla_deadlines(policy: SlaPolicy | None, priority: str, start: datetime) -> tuple[datetime, datetime, datetime]:
    """(first response due, warn at, resolution due) for a clock started at `start`."""
    if policy:
        first, resolve, warning = policy.first_response_minutes, policy.resolve_minutes, policy.warning_percent
    else:
        (first, resolve), warning = FALLBACK_SLA_MINUTES[priority], FALLBACK_WARNING_PERCENT
    calendar = _working_calendar(policy, start)
    return (
        add_business_minutes(start, first, calendar),
        add_business_minutes(start, resolve * warning / 100, calendar),
        add_business_minutes(start, resolve, calendar),
    )


def _policy_for(exception_type: ExceptionType, priority: str) -> SlaPolicy | None:
    return (
        SlaPolicy.objects.select_related("calendar", "escalation_queue")
        .filter(exception_type=exception_type, priority=priority)
        .first()
    )


# --- raising ------------------------------------------------------------------------------


def triage_queue() -> Queue:
    """Where exceptions of a type without a default queue land."""
    queue = Queue.objects.filter(slug="triage").first()
    if queue is None:
        queue, _ = Queue.objects.get_or_create(
            slug="triage", defaults={"name": "Triage", "team": Group.objects.get_or_create(name=Role.OPS_ADMIN)[0]}
        )
    return queue


def dedupe_key_for(*, order=None, line=None, shipment=None, location=None, sku=None) -> str:
    parts = [
        f"order:{order.pk}" if order is not None else "",
        f"line:{line.pk}" if line is not None else "",
        f"shipment:{shipment.pk}" if shipment is not None and line is None else "",
        f"location:{location.pk}" if location is not None and order is None else "",
        f"sku:{sku.pk}" if sku is not None and order is None else "",
    ]
    return "|".join(p for p in parts if p) or "global"


def _record_occurrence(
    exception: FulfillmentException, *, actor: Actor, summary: str, detail: dict | None, now: datetime
) -> FulfillmentException:
    """Count one more occurrence. Its summary and detail become the exception's: whoever works it acts on the problem
    as it stands now (a customer's second address change, today's shortage, a new split proposal); the occurrence
    event keeps what it replaced."""
    changes = {"occurrences": F("occurrences") + 1, "last_occurred_at": now, "updated_at": now}
    replaced = {}
    if detail and detail != exception.detail:
        changes["detail"], replaced["previous_detail"] = detail, exception.detail
    if summary and summary[:300] != exception.summary:
        changes["summary"], replaced["previous_summary"] = summary[:300], exception.summary
    FulfillmentException.objects.filter(pk=exception.pk).update(**changes)
    exception.refresh_from_db(fields=["occurrences", "last_occurred_at", "updated_at", "detail", "summary"])
    events.exception_occurred(exception, actor=actor, data={**(detail or {}), **replaced})
    return exception


@transaction.atomic
def exception_raise(
    *,
    code: str,
    summary: str,
    actor: Actor,
    order=None,
    line=None,
    shipment=None,
    location=None,
    sku=None,
    source_system: str = "portal",
    detail: dict | None = None,
    detected_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> FulfillmentException:
    """Open an exception, or count one more occurrence of the same open problem.

    The same problem is the same type with the same dedupe key (by default the
    order and line). Priority, queue and SLA deadlines are set here; the queue's
    assignment policy may give it an owner; a blocking type holds the order.
    """
    exception_type = ExceptionType.objects.select_related("default_queue").filter(code=code).first()
    if exception_type is None:
        raise InvalidInput(ExceptionError.UNKNOWN_TYPE, f"There is no exception type {code!r}.")
    now = timezone.now()
    detected_at = detected_at or now
    key = dedupe_key or dedupe_key_for(order=order, line=line, shipment=shipment, location=location, sku=sku)
    open_same = FulfillmentException.objects.select_for_update().filter(
        type=exception_type, dedupe_key=key, status__in=OPEN_STATUSES
    )
    existing = open_same.first()
    if existing:
        return _record_occurrence(existing, actor=actor, summary=summary, detail=detail, now=now)

    priority = exception_priority(
        severity=exception_type.severity,
        customer_tier=getattr(order, "customer_tier", "standard"),
        service_level=getattr(order, "service_level", "standard"),
        order_value=getattr(order, "total_amount", 0),
    )
    policy = _policy_for(exception_type, priority)
    first_due, warn_at, due_at = sla_deadlines(policy, priority, detected_at)
    if shipment is not None and location is None:
        location = shipment.location
    exception = FulfillmentException(
        type=exception_type,
        order=order,
        line=line,
        shipment=shipment,
        location=location,
        sku=sku,
        source_system=source_system,
        dedupe_key=key,
        summary=summary[:300],
        detail=detail or {},
        queue=exception_type.default_queue or triage_queue(),
        priority=priority,
        sla_policy=policy,
        detected_at=detected_at,
        first_response_due_at=first_due,
        warn_at=warn_at,
        due_at=due_at,
        last_occurred_at=now,
    )
    try:
        with transaction.atomic():
            exception.save()
    except IntegrityError:
        # Someone raised the same problem between our look and our insert; theirs stands.
        return _record_occurrence(open_same.get(), actor=actor, summary=summary, detail=detail, now=now)
    events.exception_created(exception, actor=actor)
    _auto_assign(exception)
    if exception_type.blocking and order is not None:
        hooks.blocking_raised(exception, actor)
    return exception


# --- a person's views of the queue ------------------------------------------------------

SAVED_VIEW_PARAMS = (
    "tab",
    "q",
    "type",
    "stage",
    "queue",
    "priority",
    "location",
    "source",
    "state",
    "status",
    "created_from",
    "created_to",
    "age",
    "sla",
    "responded",
    "sku",
    "partner",
    "sort",
    "size",
)


@transaction.atomic
def saved_view_save(*, user, name: str, query) -> SavedView:
    """Name the view `query` (a QueryDict of the queue page) shows; the same name again replaces it."""
    name = _require_text(name, "name", "Give the view a name.")
    if len(name) > 60:
        raise InvalidInput(
            ExceptionError.INVALID_ACTION_INPUT, "A view's name is at most 60 characters.", fields={"name": ["Too long."]}
        )
    kept = QueryDict(mutable=True)
    for key in SAVED_VIEW_PARAMS:
        value = (query.get(key) or "").strip()
        if value:
            kept[key] = value
    view, _ = SavedView.objects.update_or_create(user=user, name=name, defaults={"query": kept.urlencode()})
    return view


@transaction.atomic
def saved_view_delete(*, user, view_id: int) -> None:
    deleted, _ = SavedView.objects.filter(user=user, pk=view_id).delete()
    if not deleted:
        raise NotFound(ExceptionError.INVALID_ACTION_INPUT, "You have no such saved view.")


# --- assignment -------------------------------------------------------------------------


def presence_set(*, user, away: bool) -> Presence:
    """Mark a person away (automatic assignment passes them by) or back. Presence keeps no history:
    `updated_at` says only when it last changed."""
    with transaction.atomic():
        presence, _ = Presence.objects.select_for_update().get_or_create(user=user)
        if presence.away != away:
            presence.away = away
            presence.save(update_fields=["away", "updated_at"])
    return presence


def _present_members(queue: Queue):
    return queue.members.filter(is_active=True).exclude(presence__away=True).order_by("pk")


def _auto_assign(exception: FulfillmentException) -> None:
    # A manual queue assigns nothing, so it takes no lock: the lock would last until the caller
    # commits, and a request raising several exceptions (an order with a bad SKU and a bad price)
    # would hold several queue rows, taken in whatever order its problems came.
    if exception.queue.assignment == Queue.Assignment.MANUAL:
        return
    # The others serialize on the queue row: the round-robin cursor, and the loads least-loaded counts
    # (two exceptions counting at once would both go to the same person).
    queue = Queue.objects.select_for_update().get(pk=exception.queue_id)
    if queue.assignment == Queue.Assignment.ROUND_ROBIN:
        ids = list(_present_members(queue).values_list("pk", flat=True))
        if not ids:
            return
        after = [pk for pk in ids if queue.last_assigned_id is not None and pk > queue.last_assigned_id]
        owner_id = (after or ids)[0]
        Queue.objects.filter(pk=queue.pk).update(last_assigned_id=owner_id)
    elif queue.assignment == Queue.Assignment.LEAST_LOADED:
        members = _present_members(queue)
        loads = members.annotate(load=Count("owned_exceptions", filter=Q(owned_exceptions__status__in=OPEN_STATUSES))).order_by(
            "load", "pk"
        )
        first = loads.values_list("pk", flat=True).first()
        if first is None:
            return
        owner_id = first
    else:
        return  # made manual meanwhile
    FulfillmentException.objects.filter(pk=exception.pk).update(owner_id=owner_id)
    exception.owner_id = owner_id
    events.exception_assigned(exception, actor=SYSTEM, policy=queue.assignment)


# --- locking and transitions ----------------------------------------------------------


def exception_lock(exception: FulfillmentException | int) -> FulfillmentException:
    """Lock the exception's order (if any), then the exception. Call inside a transaction."""
    pk = exception.pk if isinstance(exception, FulfillmentException) else exception
    order_id = FulfillmentException.objects.values_list("order_id", flat=True).get(pk=pk)
    if order_id is not None:
        order_model = FulfillmentException._meta.get_field("order").related_model
        list(order_model.objects.select_for_update().filter(pk=order_id).values_list("pk", flat=True))
    return (
        FulfillmentException.objects.select_for_update(of=("self",))
        .select_related("type", "queue", "sla_policy__calendar")
        .get(pk=pk)
    )


def _touch(exception: FulfillmentException, *, operator_minutes: int, now: datetime, fields: list[str]) -> None:
    """Count the operator's minutes and, on the first human touch, the first response."""
    if operator_minutes:
        exception.operator_minutes += operator_minutes
        fields.append("operator_minutes")
    if exception.first_response_at is None:
        exception.first_response_at = now
        fields.append("first_response_at")


def _require_open(exception: FulfillmentException) -> None:
    if not exception.is_open:
        raise Conflict(ExceptionError.ILLEGAL_TRANSITION, ALREADY_CLOSED.format(status=exception.get_status_display().lower()))


def _require_text(value: str, field: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(ExceptionError.INVALID_ACTION_INPUT, message, fields={field: [message]})
    return value


# --- what people do -------------------------------------------------------------------


@transaction.atomic
def exception_claim(*, exception: FulfillmentException, user, actor: Actor, operator_minutes: int = 0) -> FulfillmentException:
    exception = exception_lock(exception)
    _require_open(exception)
    now, fields = timezone.now(), ["owner"]
    previous_owner = exception.owner_id
    exception.owner = user
    _touch(exception, operator_minutes=operator_minutes, now=now, fields=fields)
    from_status = exception.status
    if exception.status == ExceptionStatus.OPEN:
        run_transition(exception, "start_work", fields=fields)
    else:
        exception.save(update_fields=[*fields, "updated_at"])
    events.exception_claimed(
        exception, actor=actor, from_status=from_status, previous_owner_id=previous_owner, operator_minutes=operator_minutes
    )
    return exception


@transaction.atomic
def exception_assign(*, exception: FulfillmentException, owner, actor: Actor, operator_minutes: int = 0) -> FulfillmentException:
    exception = exception_lock(exception)
    _require_open(exception)
    if not exception.queue.members.filter(pk=owner.pk).exists() and not owner.groups.filter(pk=exception.queue.team_id).exists():
        raise InvalidInput(
            ExceptionError.NOT_A_MEMBER,
            f"{owner.get_username()} does not work the {exception.queue.name} queue.",
            fields={"owner": ["Not a member of this queue's team."]},
        )
    now, fields = timezone.now(), ["owner"]
    exception.owner = owner
    _touch(exception, operator_minutes=operator_minutes, now=now, fields=fields)
    exception.save(update_fields=[*fields, "updated_at"])
    events.exception_assigned(exception, actor=actor, owner=owner.get_username(), operator_minutes=operator_minutes)
    return exception


@transaction.atomic
def exception_comment(
    *, exception: FulfillmentException, note: str, actor: Actor, operator_minutes: int = 0
) -> FulfillmentException:
    note = _require_text(note, "note", NOTE_REQUIRED)
    exception = exception_lock(exception)
    fields: list[str] = []
    _touch(exception, operator_minutes=operator_minutes, now=timezone.now(), fields=fields)
    exception.save(update_fields=[*fields, "updated_at"])
    events.exception_commented(exception, actor=actor, note=note, operator_minutes=operator_minutes)
    return exception


@transaction.atomic
def exception_wait(
    *, exception: FulfillmentException, note: str, actor: Actor, operator_minutes: int = 0
) -> FulfillmentException:
    """Park the exception while someone outside answers; the policy may stop the clock."""
    note = _require_text(note, "note", "Say what the exception is waiting for.")
    exception = exception_lock(exception)
    _require_open(exception)
    now, fields = timezone.now(), ["waiting_since"]
    _touch(exception, operator_minutes=operator_minutes, now=now, fields=fields)
    from_status = run_transition(exception, "wait", fields=fields, now=now)
    events.exception_status_changed(
        exception, actor=actor, action="wait", from_status=from_status, note=note, operator_minutes=operator_minutes
    )
    return exception


@transaction.atomic
def exception_resume(
    *, exception: FulfillmentException, actor: Actor, note: str = "", operator_minutes: int = 0
) -> FulfillmentException:
    """Back to work; when the clock was paused, every deadline moves by the time spent waiting."""
    exception = exception_lock(exception)
    _require_open(exception)
    now, fields = timezone.now(), []
    paused_minutes = 0.0
    policy = exception.sla_policy
    if exception.waiting_since and (policy is None or policy.pause_while_waiting):
        calendar = _working_calendar(
            policy, exception.waiting_since, now, exception.first_response_due_at, exception.warn_at, exception.due_at
        )
        paused_minutes = business_minutes_between(exception.waiting_since, now, calendar)
        for field in ("first_response_due_at", "warn_at", "due_at"):
            setattr(
                exception,
                field,
                add_business_minutes(getattr(exception, field), paused_minutes, calendar)
                if calendar
                else getattr(exception, field) + timedelta(minutes=paused_minutes),
            )
            fields.append(field)
    _touch(exception, operator_minutes=operator_minutes, now=now, fields=fields)
    from_status = run_transition(exception, "resume", fields=[*fields, "waiting_since"])
    events.exception_status_changed(
        exception,
        actor=actor,
        action="resume",
        from_status=from_status,
        note=note,
        operator_minutes=operator_minutes,
        data={"paused_minutes": round(paused_minutes, 1)},
    )
    return exception


def _close(
    exception: FulfillmentException,
    name: str,
    *,
    actor: Actor,
    action: str,
    note: str,
    operator_minutes: int,
    transition_kwargs: dict,
) -> FulfillmentException:
    if exception.order_id is not None:
        left = hooks.problem_left(exception)
        if left is not None:
            # Closing it would leave the order stuck (on hold, or waiting) with nothing open to say why.
            raise Conflict(ExceptionError.PROBLEM_REMAINS, left.message, fixes=list(left.fixes))
    now = timezone.now()
    fields = [
        "resolution_action",
        "resolution_note",
        "resolved_at",
        "waiting_since",
        *(["root_cause"] if name == "resolve" else []),
    ]
    _touch(exception, operator_minutes=operator_minutes, now=now, fields=fields)
    from_status = run_transition(exception, name, fields=fields, now=now, **transition_kwargs)
    events.exception_status_changed(
        exception, actor=actor, action=action, from_status=from_status, note=note, operator_minutes=operator_minutes
    )
    if exception.order_id is not None:
        hooks.closed(exception, actor)
    return exception


@transaction.atomic
def exception_resolve(
    *,
    exception: FulfillmentException,
    note: str,
    actor: Actor,
    action: str = "resolve",
    root_cause: str = "",
    operator_minutes: int = 0,
) -> FulfillmentException:
    note = _require_text(note, "note", NOTE_REQUIRED)
    exception = exception_lock(exception)
    _require_open(exception)
    return _close(
        exception,
        "resolve",
        actor=actor,
        action=action,
        note=note,
        operator_minutes=operator_minutes,
        transition_kwargs={"action": action, "note": note, "root_cause": root_cause.strip()},
    )


@transaction.atomic
def exception_set_priority(
    *, exception: FulfillmentException, priority: str, actor: Actor, note: str = "", operator_minutes: int = 0
) -> FulfillmentException:
    """Change an open exception's priority; its SLA follows the policy for the new priority, counted from detection."""
    if priority not in Priority.values:
        raise InvalidInput(
            ExceptionError.INVALID_ACTION_INPUT, f"There is no priority {priority!r}.", fields={"priority": ["Choose P1 to P4."]}
        )
    exception = exception_lock(exception)
    _require_open(exception)
    if exception.priority == priority:
        raise Conflict(ExceptionError.ACTION_NOT_AVAILABLE, f"The exception is already {priority}.")
    before = {"priority": exception.priority, "due_at": exception.due_at.isoformat()}
    now = timezone.now()
    policy = _policy_for(exception.type, priority)
    first_due, warn_at, due_at = sla_deadlines(policy, priority, exception.detected_at)
    exception.priority, exception.sla_policy = priority, policy
    exception.first_response_due_at, exception.warn_at, exception.due_at = first_due, warn_at, due_at
    fields = ["priority", "sla_policy", "first_response_due_at", "warn_at", "due_at"]
    if exception.warned_at and warn_at > now:
        # The warning belonged to the old deadline; the new one warns again in its time.
        exception.warned_at = None
        fields.append("warned_at")
    _touch(exception, operator_minutes=operator_minutes, now=now, fields=fields)
    exception.save(update_fields=[*fields, "updated_at"])
    events.exception_action(
        exception,
        actor=actor,
        action="set_priority",
        note=note.strip(),
        operator_minutes=operator_minutes,
        data={
            "from_priority": before["priority"],
            "to_priority": priority,
            "from_due_at": before["due_at"],
            "due_at": due_at.isoformat(),
        },
    )
    return exception


@transaction.atomic
def exception_dismiss(
    *, exception: FulfillmentException, reason: str, actor: Actor, operator_minutes: int = 0
) -> FulfillmentException:
    reason = _require_text(reason, "reason", REASON_REQUIRED)
    exception = exception_lock(exception)
    _require_open(exception)
    return _close(
        exception,
        "dismiss",
        actor=actor,
        action="dismiss",
        note=reason,
        operator_minutes=operator_minutes,
        transition_kwargs={"reason": reason},
    )


@transaction.atomic
def exception_reopen(
    *, exception: FulfillmentException, note: str, actor: Actor, operator_minutes: int = 0
) -> FulfillmentException:
    note = _require_text(note, "note", NOTE_REQUIRED)
    exception = exception_lock(exception)
    fields = ["resolved_at", "resolution_action"]
    _touch(exception, operator_minutes=operator_minutes, now=timezone.now(), fields=fields)
    try:
        with transaction.atomic():
            from_status = run_transition(exception, "reopen", fields=fields)
    except IntegrityError:
        raise Conflict(
            ExceptionError.ALREADY_OPEN, "The same problem is already open in another exception; work that one."
        ) from None
    events.exception_status_changed(
        exception, actor=actor, action="reopen", from_status=from_status, note=note, operator_minutes=operator_minutes
    )
    if exception.type.blocking and exception.order_id is not None:
        hooks.blocking_raised(exception, actor)
    return exception


# --- the SLA clock ----------------------------------------------------------------------


RUNNING_STATUSES = [ExceptionStatus.OPEN, ExceptionStatus.IN_PROGRESS]


def _running_clocks() -> list[Q]:
    """Open exceptions whose clock runs, in two parts: open or in progress, and waiting under a policy that does
    not pause. Each part reads one table and matches a partial index (exceptions/models.py), so the rows a
    paused clock leaves past their times are never read."""
    return [
        Q(status__in=RUNNING_STATUSES),
        Q(status=ExceptionStatus.WAITING, sla_policy_id__in=SlaPolicy.objects.filter(pause_while_waiting=False).values("pk")),
    ]


def _running_clock() -> Q:
    running, waiting = _running_clocks()
    return running | waiting


def _warning_due(now: datetime) -> Q:
    return Q(warned_at__isnull=True, warn_at__lte=now, due_at__gt=now)


def _escalation_due(now: datetime) -> Q:
    return Q(escalated=False, due_at__lte=now)


# Priority.raised() as SQL, so an escalation raises every row in the one UPDATE.
RAISED_PRIORITY = Case(
    *(When(priority=priority, then=Value(str(Priority(priority).raised()))) for priority in Priority.values),
    default=F("priority"),
)


def due_for_warning(now: datetime) -> QuerySet:
    return FulfillmentException.objects.filter(_running_clock(), _warning_due(now))


def due_for_escalation(now: datetime) -> QuerySet:
    return FulfillmentException.objects.filter(_running_clock(), _escalation_due(now))


def _claim(due: QuerySet, batch: int | None, **columns) -> tuple[str, list]:
    """SQL and parameters of a SELECT of the due rows (their ``id`` and ``columns``), locking them.

    Rows another transaction holds are skipped: a concurrent sweep takes the others, and those rows are
    still due for the next run if that transaction leaves them due. SQLite has no row locks and ignores the
    clause; its transactions start IMMEDIATE (settings), so one sweep at a time writes there anyway.
    """
    claimed = due.select_for_update(skip_locked=True, of=("self",)).order_by()
    if connection.vendor == "postgresql":
        claimed = claimed.filter(Q(order__isnull=True) | Q(order_id__in=_orders_lockable_now()))
    if batch is not None:
        claimed = claimed.order_by("pk")[:batch]
    # A model query (not values()), so that the lock is taken on the exception alone and not on the outer-joined
    # policy, which PostgreSQL refuses.
    sql, params = claimed.annotate(**columns).only("pk").query.sql_with_params()
    return sql, list(params)


def _orders_lockable_now() -> RawSQL:
    """The order of each claimed exception, locked before the exception itself, skipping those another transaction
    holds (their exceptions stay due for the next run).

    Changing an exception stamps its order (a trigger; see the orders' migration 0015): taken after the
    exceptions, the orders' locks would be taken in the opposite order from every other path, which locks the
    order first, and the two could deadlock.
    """
    table = connection.ops.quote_name(FulfillmentException._meta.db_table)
    orders = connection.ops.quote_name(FulfillmentException._meta.get_field("order").related_model._meta.db_table)
    return RawSQL(f"SELECT locked.id FROM {orders} locked WHERE locked.id = {table}.order_id FOR UPDATE SKIP LOCKED", [])


def _as_aware(value) -> datetime:
    """A timestamp as a raw cursor returns it (SQLite: text or naive UTC) made what the ORM would load."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def _claim_and_update(claimed: tuple[str, list], *, set_sql: str, set_params: list, still_due: str, due_columns: list[str]):
    """Run ``UPDATE ... FROM (the claimed rows) ... RETURNING`` and give, per changed row, its id, its due_at and
    the claimed ``due_columns``, ordered by id.

    ``still_due`` repeats the condition that made the row due, so a row another sweep changed since it was
    read is not changed (or reported) twice.
    """
    table = connection.ops.quote_name(FulfillmentException._meta.db_table)
    claimed_sql, claimed_params = claimed
    update = (
        f"WITH due AS ({claimed_sql}) UPDATE {table} SET {set_sql} FROM due "
        f"WHERE {table}.id = due.id AND {still_due} RETURNING {table}.id, {table}.due_at"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(update + "".join(f", due.{column}" for column in due_columns), claimed_params + set_params)
            rows = [(pk, _as_aware(due_at), *rest) for pk, due_at, *rest in cursor.fetchall()]
        else:
            # SQLite's RETURNING sees only the updated table, so the claimed columns are read first; the
            # transaction holds the write lock from its start, so the UPDATE claims the same rows.
            columns = ", ".join(["id", *due_columns])
            cursor.execute(f"SELECT {columns} FROM ({claimed_sql}) AS due", claimed_params)
            claimed_by_id = {pk: rest for pk, *rest in cursor.fetchall()}
            cursor.execute(update, claimed_params + set_params)
            rows = [(pk, _as_aware(due_at), *claimed_by_id[pk]) for pk, due_at in cursor.fetchall()]
    return sorted(rows)


def _anything_due(now: datetime) -> bool:
    """One read of four index ranges (warning and escalation, running and waiting clocks), so that a minute with
    nothing due costs no lock, no UPDATE and no plan of one.

    Each part is a first row in its index's order rather than an EXISTS: with LIMIT 1 and no order, the planner
    reckons a scan of the table finds a due row sooner, which is true only when there is one."""
    parts = [
        FulfillmentException.objects.filter(clock, due).order_by(order).values("pk")[:1].query.sql_with_params()
        for due, order in ((_warning_due(now), "warn_at"), (_escalation_due(now), "due_at"))
        for clock in _running_clocks()
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + " OR ".join(f"({sql}) IS NOT NULL" for sql, _ in parts),
            [param for _, params in parts for param in params],
        )
        return bool(cursor.fetchone()[0])


def sla_sweep(*, now: datetime | None = None, batch: int | None = None) -> dict[str, int]:
    """Warn at the policy's threshold and escalate at breach; safe to run twice or in parallel.

    One UPDATE per kind changes every due row (claimed with SKIP LOCKED) and returns what the events need,
    and one INSERT per event kind writes them, so a run costs the same few queries however much is due and
    clears any backlog. The UPDATEs repeat the due conditions, so a second sweep (or a concurrent one) finds
    nothing left to do. ``batch`` caps the rows per kind; by default there is no cap.
    """
    now = now or timezone.now()
    # Read before the transaction: most minutes nothing is due, and then there is nothing to open one for.
    if not _anything_due(now):
        return {"warned": 0, "escalated": 0}
    return _sweep(now, batch)


@transaction.atomic
def _sweep(now: datetime, batch: int | None) -> dict[str, int]:
    at = connection.ops.adapt_datetimefield_value(now)
    warned = _claim_and_update(
        _claim(due_for_warning(now), batch),
        set_sql="warned_at = %s",
        set_params=[at],
        still_due="warned_at IS NULL",
        due_columns=[],
    )
    events.exceptions_sla_warned(((pk, due_at) for pk, due_at in warned), at=now)

    escalated = _claim_and_update(
        _claim(
            due_for_escalation(now),
            batch,
            from_priority=F("priority"),
            to_priority=RAISED_PRIORITY,
            from_queue_id=F("queue_id"),
            to_queue_id=Coalesce("sla_policy__escalation_queue_id", "queue_id"),
            from_queue=F("queue__name"),
            to_queue=Coalesce("sla_policy__escalation_queue__name", "queue__name"),
        ),
        # The escalation team takes it from here when it moves queue; staying, it keeps its owner.
        set_sql=(
            "escalated = %s, escalated_at = %s, updated_at = %s, priority = due.to_priority, queue_id = due.to_queue_id, "
            "owner_id = CASE WHEN due.to_queue_id = due.from_queue_id THEN owner_id END"
        ),
        set_params=[True, at, at],
        still_due="NOT escalated",
        due_columns=["from_priority", "to_priority", "from_queue", "to_queue"],
    )
    events.exceptions_sla_breached(((pk, due_at) for pk, due_at, *_ in escalated), at=now)
    events.exceptions_escalated(
        (
            events.Escalation(pk, due_at, from_priority, to_priority, from_queue, to_queue)
            for pk, due_at, from_priority, to_priority, from_queue, to_queue in escalated
        ),
        at=now,
    )
    return {"warned": len(warned), "escalated": len(escalated)}


def open_exception_exists(*, order_id: int, blocking: bool | None = None, exclude_pk: int | None = None) -> bool:
    qs = FulfillmentException.objects.filter(order_id=order_id, status__in=OPEN_STATUSES)
    if blocking is not None:
        qs = qs.filter(type__blocking=blocking)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()
