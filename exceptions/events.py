"""Creators of ExceptionEvent rows; services call them inside their transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.actors import SYSTEM, Actor

from .models import ExceptionEvent, FulfillmentException

K = ExceptionEvent.Kind


def _event(exception: FulfillmentException, kind: str, *, actor: Actor, **fields) -> ExceptionEvent:
    return ExceptionEvent.objects.create(exception=exception, kind=kind, actor=str(actor), **fields)


def exception_created(exception: FulfillmentException, *, actor: Actor) -> ExceptionEvent:
    return _event(
        exception,
        K.CREATED,
        actor=actor,
        to_status=exception.status,
        at=exception.detected_at,
        data={
            "queue": exception.queue.name,
            "priority": exception.priority,
            "due_at": exception.due_at.isoformat(),
            "summary": exception.summary,
        },
    )


def exception_occurred(exception: FulfillmentException, *, actor: Actor, data: dict) -> ExceptionEvent:
    return _event(exception, K.OCCURRED, actor=actor, data={"occurrences": exception.occurrences, **data})


def exception_assigned(
    exception: FulfillmentException, *, actor: Actor, owner: str = "", policy: str = "", operator_minutes: int = 0
) -> ExceptionEvent:
    return _event(
        exception,
        K.ASSIGNED,
        actor=actor,
        operator_minutes=operator_minutes,
        data={"owner": owner or exception.owner.get_username(), **({"policy": policy} if policy else {})},
    )


def exception_claimed(
    exception: FulfillmentException, *, actor: Actor, from_status: str, previous_owner_id, operator_minutes: int
) -> ExceptionEvent:
    return _event(
        exception,
        K.CLAIMED,
        actor=actor,
        action="claim",
        from_status=from_status,
        to_status=exception.status,
        operator_minutes=operator_minutes,
        data={"previous_owner_id": previous_owner_id},
    )


def exception_commented(exception: FulfillmentException, *, actor: Actor, note: str, operator_minutes: int) -> ExceptionEvent:
    return _event(exception, K.COMMENTED, actor=actor, action="comment", note=note, operator_minutes=operator_minutes)


def exception_status_changed(
    exception: FulfillmentException,
    *,
    actor: Actor,
    action: str,
    from_status: str,
    note: str = "",
    operator_minutes: int = 0,
    data: dict | None = None,
) -> ExceptionEvent:
    return _event(
        exception,
        K.STATUS_CHANGED,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=exception.status,
        note=note,
        operator_minutes=operator_minutes,
        data=data or {},
    )


def exception_action(
    exception: FulfillmentException,
    *,
    actor: Actor,
    action: str,
    note: str = "",
    operator_minutes: int = 0,
    data: dict | None = None,
) -> ExceptionEvent:
    return _event(exception, K.ACTION, actor=actor, action=action, note=note, operator_minutes=operator_minutes, data=data or {})


def _sla_data(due_at: datetime) -> dict:
    return {"due_at": due_at.isoformat()}


def _escalated_data(*, from_priority: str, to_priority: str, from_queue: str, to_queue: str, due_at: datetime) -> dict:
    return {
        "from_priority": from_priority,
        "to_priority": to_priority,
        "from_queue": from_queue,
        "to_queue": to_queue,
        "due_at": due_at.isoformat(),
    }


def exception_sla_warned(exception: FulfillmentException, *, at: datetime) -> ExceptionEvent:
    return _event(exception, K.SLA_WARNED, actor=SYSTEM, at=at, data=_sla_data(exception.due_at))


def exception_sla_breached(exception: FulfillmentException, *, at: datetime) -> ExceptionEvent:
    return _event(exception, K.SLA_BREACHED, actor=SYSTEM, at=at, data=_sla_data(exception.due_at))


def exception_escalated(
    exception: FulfillmentException, *, at: datetime, from_priority: str, to_priority: str, from_queue: str, to_queue: str
) -> ExceptionEvent:
    return _event(
        exception,
        K.ESCALATED,
        actor=SYSTEM,
        at=at,
        data=_escalated_data(
            from_priority=from_priority,
            to_priority=to_priority,
            from_queue=from_queue,
            to_queue=to_queue,
            due_at=exception.due_at,
        ),
    )


# --- the same events for many exceptions at once, as the SLA sweep writes them -----------------


@dataclass(frozen=True)
class Escalation:
    """One exception the sweep escalated: what it was and what it became."""

    exception_id: int
    due_at: datetime
    from_priority: str
    to_priority: str
    from_queue: str
    to_queue: str


def _bulk(kind: str, rows: Iterable[tuple[int, dict]], *, at: datetime) -> list[ExceptionEvent]:
    """One INSERT for all the rows (batched only where the engine caps the parameters of a statement)."""
    events = [
        ExceptionEvent(exception_id=exception_id, kind=kind, actor=str(SYSTEM), at=at, data=data) for exception_id, data in rows
    ]
    return ExceptionEvent.objects.bulk_create(events) if events else []


def exceptions_sla_warned(due: Iterable[tuple[int, datetime]], *, at: datetime) -> list[ExceptionEvent]:
    """exception_sla_warned for each (exception id, due at)."""
    return _bulk(K.SLA_WARNED, ((exception_id, _sla_data(due_at)) for exception_id, due_at in due), at=at)


def exceptions_sla_breached(due: Iterable[tuple[int, datetime]], *, at: datetime) -> list[ExceptionEvent]:
    """exception_sla_breached for each (exception id, due at)."""
    return _bulk(K.SLA_BREACHED, ((exception_id, _sla_data(due_at)) for exception_id, due_at in due), at=at)


def exceptions_escalated(escalations: Iterable[Escalation], *, at: datetime) -> list[ExceptionEvent]:
    """exception_escalated for each escalation."""
    return _bulk(
        K.ESCALATED,
        (
            (
                e.exception_id,
                _escalated_data(
                    from_priority=e.from_priority,
                    to_priority=e.to_priority,
                    from_queue=e.from_queue,
                    to_queue=e.to_queue,
                    due_at=e.due_at,
                ),
            )
            for e in escalations
        ),
        at=at,
    )
