"""Who hears of order events: apps to the right of orders (the outbox of integrations) subscribe here.

A subscriber is called inside the transaction that wrote the event, with the event already saved,
so whatever it writes (an outbox row) commits or rolls back with the change that caused it.
Subscribers notify and record; they do not change orders.
"""

from __future__ import annotations

from collections.abc import Callable

from .models import OrderEvent

Subscriber = Callable[[OrderEvent], None]

_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> Subscriber:
    """Call `subscriber(event)` for every order event from now on (once, however often it subscribes)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    return subscriber


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def notify(event: OrderEvent) -> None:
    for subscriber in _subscribers:
        subscriber(event)
