"""Points where apps to the right (orders) act on exception events without this app importing them.

Handlers run inside the transaction of the service that fires them, so a hold
and the exception that caused it commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Callable

from fulfillment.actors import Actor

Handler = Callable[["FulfillmentException", Actor], None]  # noqa: F821

_blocking_raised: list[Handler] = []
_closed: list[Handler] = []


def on_blocking_raised(handler: Handler) -> Handler:
    """Register `handler(exception, actor)`, called when a blocking exception opens on an order."""
    if handler not in _blocking_raised:
        _blocking_raised.append(handler)
    return handler


def on_closed(handler: Handler) -> Handler:
    """Register `handler(exception, actor)`, called when an exception on an order is resolved or dismissed."""
    if handler not in _closed:
        _closed.append(handler)
    return handler


def blocking_raised(exception, actor: Actor) -> None:
    for handler in _blocking_raised:
        handler(exception, actor)


def closed(exception, actor: Actor) -> None:
    for handler in _closed:
        handler(exception, actor)
