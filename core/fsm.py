"""The one way a status changes: run a django-fsm-2 transition on a locked row and save it.

Models keep their transitions pure (they only set fields on themselves); services lock the row,
call `run_transition`, and write the audit event. An illegal transition, or one whose condition
fails, is a 409 that says why; a row someone else changed meanwhile is a 409 too.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.utils.text import capfirst
from django_fsm import ConcurrentTransition, TransitionNotAllowed, can_proceed

from .errors import Conflict, CoreError

CONCURRENT_UPDATE = "Someone else changed this at the same moment; reload and try again."


def transition_label(obj: models.Model, name: str) -> str:
    """The label people see for transition `name` ("Mark ready"), or the name itself."""
    for transition in obj._meta.get_field("status").get_all_transitions(type(obj)):
        if transition.name == name:
            return transition.custom.get("label", name)
    return name


def failed_condition(obj: models.Model, name: str) -> str:
    """The docstring of the first condition of transition `name` that does not hold now, or ""."""
    meta = getattr(type(obj), name)._django_fsm
    current = meta.get_transition(obj.status)
    for condition in current.conditions if current else ():
        if not condition(obj):
            return (condition.__doc__ or condition.__name__).strip()
    return ""


class IllegalTransition(Conflict):
    """`name` is not possible from the row's status, or a condition of it does not hold."""

    def __init__(self, obj: models.Model, name: str, reason: str = "") -> None:
        what = capfirst(obj._meta.verbose_name)
        # A model people know by another name than its id says so with `display_name`; the id stays in the detail.
        name_shown = getattr(obj, "display_name", None) or obj.pk
        message = f"{what} {name_shown} is {obj.get_status_display().lower()}; '{transition_label(obj, name)}' is not possible"
        message += f": {reason}" if reason else " from that status."
        super().__init__(CoreError.ILLEGAL_TRANSITION, message, id=obj.pk, status=obj.status, transition=name)


def run_transition(obj: models.Model, name: str, *, fields: Iterable[str] = (), **kwargs) -> str:
    """Run transition `name` on an instance the caller holds locked and save it; return the status it left.

    `fields` are the fields the transition sets besides the status; `kwargs` go to the transition.
    """
    method = getattr(obj, name)
    from_status = obj.status
    if not can_proceed(method, check_conditions=False):
        raise IllegalTransition(obj, name)
    try:
        method(**kwargs)
    except TransitionNotAllowed:
        raise IllegalTransition(obj, name, failed_condition(obj, name)) from None
    try:
        obj.save(update_fields=["status", "updated_at", *fields])
    except ConcurrentTransition:
        raise Conflict(CoreError.CONCURRENT_UPDATE, CONCURRENT_UPDATE) from None
    return from_status


def undo_transition_in_memory(obj: models.Model, *, status: str, updated_at) -> None:
    """Give an instance back the status (and time) it had before a transition whose savepoint was rolled back.

    Not refresh_from_db: django-fsm-2 lifts the field's protection for it on the class, which another thread
    can see half-way. The field's own setter is what django-fsm-2 itself uses, and saving the row afterwards
    again expects the status it had.
    """
    obj._meta.get_field("status").set_state(obj, status)
    obj.updated_at = updated_at
    obj._update_initial_state()
