"""The registry of governed resolution actions.

An action has a code, a label, the permission it needs, a form for its input,
a test of whether it applies to an exception right now, and one service call.
This app registers the generic actions; the orders app registers the ones that
touch orders (release hold, cancel line, cancel order, correct address) from
its AppConfig.ready, so nothing here imports orders.

`action_perform` is the single entry point for pages and API: it locks, checks
role and queue, validates the form and runs the service in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.actors import Actor
from core.db import atomic_retrying_deadlocks
from core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from core.roles import Role

from . import forms, services
from .errors import NOT_YOUR_QUEUE, PERMISSION_DENIED, ExceptionError
from .models import OPEN_STATUSES, ExceptionStatus, FulfillmentException, Queue

# (locked exception, actor, cleaned data, user) -> a message for the person, or anything else for "done"
Run = Callable[[FulfillmentException, Actor, dict, object], object]


@dataclass(frozen=True)
class Action:
    code: str
    label: str
    permission: str  # "app_label.codename"
    form_class: type[forms.ActionForm]
    run: Run  # (locked exception, actor, cleaned data, user) -> anything; one service call
    applies: Callable[[FulfillmentException, object], bool] = lambda exception, user: exception.is_open
    generic: bool = True  # offered on every type; else only where the type lists it in allowed_actions
    verb: str = ""  # for messages: "Your role may not <verb>."
    style: str = ""  # "primary" or "danger" for the button
    form_kwargs: Callable[[FulfillmentException], dict] = field(default=lambda exception: {})


_registry: dict[str, Action] = {}


def register(action: Action) -> Action:
    _registry[action.code] = action
    return action


def get(code: str) -> Action:
    try:
        return _registry[code]
    except KeyError:
        raise NotFound(ExceptionError.UNKNOWN_ACTION, f"There is no action {code!r}.") from None


def registered(code: str) -> bool:
    return code in _registry


def all_actions() -> list[Action]:
    return list(_registry.values())


# --- who may act where ------------------------------------------------------------------


def workable_queue_ids(user) -> set[int] | None:
    """Queues the user works: None means every queue (superusers and ops admins)."""
    if user.is_superuser or user.groups.filter(name=Role.OPS_ADMIN).exists():
        return None
    team_ids = list(user.groups.values_list("pk", flat=True))
    return set(Queue.objects.filter(members=user).values_list("pk", flat=True)) | set(
        Queue.objects.filter(team_id__in=team_ids).values_list("pk", flat=True)
    )


class _NotComputed:
    """Stands for "the caller did not read the user's queues": None already means "every queue"."""

    def __repr__(self) -> str:
        return "NOT_COMPUTED"


NOT_COMPUTED = _NotComputed()


def may_work(user, queue_id: int, queue_ids: set[int] | _NotComputed | None = NOT_COMPUTED) -> bool:
    queue_ids = workable_queue_ids(user) if queue_ids is NOT_COMPUTED else queue_ids
    return queue_ids is None or queue_id in queue_ids


def offered(exception: FulfillmentException, action: Action) -> bool:
    return action.generic or action.code in (exception.type.allowed_actions or [])


def available_actions(
    exception: FulfillmentException,
    user,
    *,
    queue_ids: set[int] | _NotComputed | None = NOT_COMPUTED,
    permissions: set[str] | None = None,
) -> list[Action]:
    """The actions this user may take on this exception now (for buttons and `allowed_actions`): the type's own,
    which fix its problem, first and in the order the type lists them; then the generic ones."""
    permissions = user.get_all_permissions() if permissions is None else permissions
    if not may_work(user, exception.queue_id, queue_ids):
        return []
    own = exception.type.allowed_actions or []
    possible = [
        action
        for action in _registry.values()
        if offered(exception, action)
        and (user.is_superuser or action.permission in permissions)
        and action.applies(exception, user)
    ]
    return sorted(possible, key=lambda action: (action.generic, own.index(action.code) if action.code in own else 0))


# --- the one entry point ----------------------------------------------------------------


def action_form(code: str, exception: FulfillmentException, data=None, **kwargs):
    action = get(code)
    return action.form_class(data, exception=exception, **{**action.form_kwargs(exception), **kwargs})


@dataclass(frozen=True)
class ActionResult:
    exception: FulfillmentException
    message: str  # what the person should read; empty means "done"


def action_perform(*, code: str, exception_id: int, user, data) -> ActionResult:
    """Check, validate and run one action in one transaction (run again if PostgreSQL fails it to break a
    deadlock); raise a DomainError (and change nothing) when it may not run."""
    return atomic_retrying_deadlocks(lambda: _perform(code=code, exception_id=exception_id, user=user, data=data))


def _perform(*, code: str, exception_id: int, user, data) -> ActionResult:
    action = get(code)
    try:
        exception = services.exception_lock(exception_id)
    except FulfillmentException.DoesNotExist:
        raise NotFound(ExceptionError.UNKNOWN_ACTION, f"There is no exception {exception_id}.") from None
    if not (user.is_superuser or user.has_perm(action.permission)):
        raise Forbidden(ExceptionError.PERMISSION_DENIED, PERMISSION_DENIED.format(action=action.verb or action.label.lower()))
    if not may_work(user, exception.queue_id):
        raise Forbidden(ExceptionError.NOT_YOUR_QUEUE, NOT_YOUR_QUEUE.format(queue=exception.queue.name))
    if not offered(exception, action):
        raise Conflict(
            ExceptionError.ACTION_NOT_AVAILABLE, f"'{action.label}' is not an action for {exception.type.name} exceptions."
        )
    if not action.applies(exception, user):
        if not exception.is_open and code != "reopen":
            message = f"This exception is already {exception.get_status_display().lower()}."
        else:
            message = f"'{action.label}' is not possible on this exception now."
        raise Conflict(ExceptionError.ACTION_NOT_AVAILABLE, message, status=exception.status)
    form = action_form(code, exception, data)
    if not form.is_valid():
        first = next(iter(form.errors.values()))[0]
        raise InvalidInput(ExceptionError.INVALID_ACTION_INPUT, first, fields={k: list(v) for k, v in form.errors.items()})
    outcome = action.run(exception, Actor.for_user(user), form.cleaned_data, user)
    exception.refresh_from_db()
    return ActionResult(exception, outcome if isinstance(outcome, str) else "")


# --- many at once ---------------------------------------------------------------------------

BULK_ACTIONS = ("claim", "assign", "comment", "resolve", "dismiss", "set_priority")
BULK_LIMIT = 500


@dataclass(frozen=True)
class BulkOutcome:
    exception_id: int
    done: bool
    message: str  # what happened, or why it was refused


def action_perform_many(*, code: str, exception_ids: list[int], user, data) -> list[BulkOutcome]:
    """Run one action on each exception, each in its own transaction through `action_perform`: an exception is
    changed wholly or not at all, and one refused says why without stopping the others."""
    if code not in BULK_ACTIONS:
        raise InvalidInput(ExceptionError.UNKNOWN_ACTION, f"'{code}' cannot be run on many exceptions at once.")
    ids = list(dict.fromkeys(exception_ids))
    if not ids:
        raise InvalidInput(ExceptionError.INVALID_ACTION_INPUT, "Select at least one exception.")
    if len(ids) > BULK_LIMIT:
        raise InvalidInput(
            ExceptionError.INVALID_ACTION_INPUT,
            f"{len(ids)} exceptions selected; at most {BULK_LIMIT} go at once. Narrow the filter.",
        )
    # Input that is wrong whatever the exception (an empty note) is refused once, before anything runs.
    form = get(code).form_class(data, exception=None)
    if not form.is_valid():
        errors = {field: list(messages) for field, messages in form.errors.items() if field != "owner"}
        if errors:
            raise InvalidInput(ExceptionError.INVALID_ACTION_INPUT, next(iter(errors.values()))[0], fields=errors)
    outcomes = []
    for exception_id in ids:
        try:
            result = action_perform(code=code, exception_id=exception_id, user=user, data=data)
        except DomainError as error:
            outcomes.append(BulkOutcome(exception_id, False, error.message))
        else:
            outcomes.append(BulkOutcome(exception_id, True, result.message))
    return outcomes


# --- the generic actions ------------------------------------------------------------------

WORK = "exceptions.work_exception"


def _minutes(data: dict) -> int:
    return data.get("operator_minutes") or 0


register(
    Action(
        "claim",
        "Claim",
        WORK,
        forms.ClaimForm,
        verb="claim exceptions",
        style="primary",
        run=lambda e, actor, d, user: services.exception_claim(exception=e, user=user, actor=actor, operator_minutes=_minutes(d)),
        applies=lambda e, user: e.is_open and e.owner_id != user.pk,
    )
)
register(
    Action(
        "assign",
        "Assign",
        "exceptions.assign_exception",
        forms.AssignForm,
        verb="assign exceptions",
        run=lambda e, actor, d, user: services.exception_assign(
            exception=e, owner=d["owner"], actor=actor, operator_minutes=_minutes(d)
        ),
    )
)
register(
    Action(
        "comment",
        "Comment",
        WORK,
        forms.CommentForm,
        verb="comment on exceptions",
        run=lambda e, actor, d, user: services.exception_comment(
            exception=e, note=d["note"], actor=actor, operator_minutes=_minutes(d)
        ),
        applies=lambda e, user: True,
    )
)
register(
    Action(
        "wait",
        "Wait",
        WORK,
        forms.WaitForm,
        verb="park exceptions",
        run=lambda e, actor, d, user: services.exception_wait(
            exception=e, note=d["note"], actor=actor, operator_minutes=_minutes(d)
        ),
        applies=lambda e, user: e.status in (ExceptionStatus.OPEN, ExceptionStatus.IN_PROGRESS),
    )
)
register(
    Action(
        "resume",
        "Resume",
        WORK,
        forms.ResumeForm,
        verb="resume exceptions",
        run=lambda e, actor, d, user: services.exception_resume(
            exception=e, note=d.get("note", ""), actor=actor, operator_minutes=_minutes(d)
        ),
        applies=lambda e, user: e.status == ExceptionStatus.WAITING,
    )
)
register(
    Action(
        "resolve",
        "Resolve",
        WORK,
        forms.ResolveForm,
        verb="resolve exceptions",
        style="primary",
        run=lambda e, actor, d, user: services.exception_resolve(
            exception=e, note=d["note"], root_cause=d.get("root_cause", ""), actor=actor, operator_minutes=_minutes(d)
        ),
    )
)
register(
    Action(
        "set_priority",
        "Change priority",
        WORK,
        forms.PriorityForm,
        verb="change the priority of exceptions",
        run=lambda e, actor, d, user: services.exception_set_priority(
            exception=e, priority=d["priority"], note=d.get("note", ""), actor=actor
        ),
    )
)
register(
    Action(
        "dismiss",
        "Dismiss",
        "exceptions.dismiss_exception",
        forms.DismissForm,
        verb="dismiss exceptions",
        style="danger",
        run=lambda e, actor, d, user: services.exception_dismiss(
            exception=e, reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
        ),
    )
)
register(
    Action(
        "reopen",
        "Reopen",
        WORK,
        forms.ReopenForm,
        verb="reopen exceptions",
        run=lambda e, actor, d, user: services.exception_reopen(
            exception=e, note=d["note"], actor=actor, operator_minutes=_minutes(d)
        ),
        applies=lambda e, user: e.status not in OPEN_STATUSES,
    )
)
