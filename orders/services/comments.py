"""A person's note on an order: it changes nothing about the order and stays in its timeline."""

from __future__ import annotations

from django.db import transaction

from core.actors import Actor
from core.errors import InvalidInput
from exceptions.errors import NOTE_REQUIRED

from .. import subscribers
from ..errors import OrderError
from ..models import Order, OrderEvent
from .locks import order_lock


@transaction.atomic
def order_comment(*, order: Order, note: str, actor: Actor) -> OrderEvent:
    """Write the note as an OrderEvent of kind note, named "comment"."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput(OrderError.INVALID_ORDER, NOTE_REQUIRED, fields={"note": [NOTE_REQUIRED]})
    order = order_lock(order)
    event = OrderEvent(order=order, kind=OrderEvent.Kind.NOTE, name="comment", actor=str(actor), data={"note": note})
    event.save(force_insert=True)
    # Every order event reaches the subscribers in its transaction, as orders.events does for the others.
    subscribers.notify(event)
    return event
