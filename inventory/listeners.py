"""How this app tells the apps to its right that stock rose at a location (a receipt, a count, a positive
adjustment), so a backorder waiting for it can be filled. It never imports them.

Listeners are connected at start-up (AppConfig.ready) and called inside the transaction that raised the
stock. They must not take locks of their own there: a listener that has work to do schedules it after
commit, in its own transaction, so the order-then-stock lock order of every other path holds.
"""

from __future__ import annotations

from collections.abc import Callable

from core.actors import Actor

StockRaised = Callable[[int, int, Actor], None]  # (location_id, sku_id, actor)

_raised: list[StockRaised] = []


def on_stock_raised(listener: StockRaised) -> None:
    if listener not in _raised:
        _raised.append(listener)


def stock_raised(*, location_id: int, sku_id: int, actor: Actor) -> None:
    for listener in _raised:
        listener(location_id, sku_id, actor)
