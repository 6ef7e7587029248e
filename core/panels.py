"""Panels that apps to the right add to pages of apps to their left (the order page, the exception page).

A page names a slot and passes its object; each provider registered for that slot renders its own HTML
for it, or None to stay out. The page never imports the apps that fill it, so the arrows keep pointing
one way, as with `orders.subscribers`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

Provider = Callable[[HttpRequest, Any], str | None]

_providers: dict[str, list[Provider]] = {}


def register(slot: str, provider: Provider) -> Provider:
    """Ask `provider(request, obj)` for a panel on every page showing `slot` (once, however often it registers)."""
    providers = _providers.setdefault(slot, [])
    if provider not in providers:
        providers.append(provider)
    return provider


def unregister(slot: str, provider: Provider) -> None:
    if provider in _providers.get(slot, ()):
        _providers[slot].remove(provider)


def render(slot: str, request: HttpRequest, obj: Any) -> list[SafeString]:
    """The panels for `obj` in `slot`, in the order their providers registered; a provider's None or "" is left out."""
    rendered = (provider(request, obj) for provider in _providers.get(slot, ()))
    # A provider answers with HTML it rendered from its own template, escaped there.
    return [mark_safe(html) for html in rendered if html]
