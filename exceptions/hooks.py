"""How this app tells the orders app (to its right, which it never imports) what happens to an order's
exceptions, and asks it whether an exception's problem is still there.

The orders app connects one listener at start-up (OrdersConfig.ready). It is called inside the
transaction of the service that fires it, with the order's and the exception's locks held, so a hold
and the exception that caused it commit or roll back together. Without a listener nothing happens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.actors import Actor


@dataclass(frozen=True)
class ProblemLeft:
    """What is still wrong, in words, and the codes of the actions that would fix it."""

    message: str
    fixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrderListener:
    blocking_raised: Callable[[object, Actor], None]  # a blocking exception opened on an order
    closed: Callable[[object, Actor], None]  # an exception on an order was resolved or dismissed
    problem_left: Callable[[object], ProblemLeft | None]  # asked before an exception on an order closes


_listener: OrderListener | None = None


def connect(listener: OrderListener) -> None:
    global _listener
    _listener = listener


def blocking_raised(exception, actor: Actor) -> None:
    if _listener is not None:
        _listener.blocking_raised(exception, actor)


def closed(exception, actor: Actor) -> None:
    if _listener is not None:
        _listener.closed(exception, actor)


def problem_left(exception) -> ProblemLeft | None:
    return _listener.problem_left(exception) if _listener is not None else None
