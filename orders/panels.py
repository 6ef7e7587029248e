"""The orders' panels on pages of the exceptions app, which may not import this one."""

from __future__ import annotations

from django.template.loader import render_to_string

from core import panels

from .services import duplicates


def duplicate_panel(request, exception) -> str | None:
    """A duplicate_order's two orders side by side, what differs between them marked."""
    if exception.type.code != duplicates.DUPLICATE:
        return None
    compared = duplicates.side_by_side(exception)
    if compared is None:
        return None
    return render_to_string("orders/_duplicate.html", {"compared": compared, "exception": exception}, request=request)


def register_panels() -> None:
    panels.register("exception", duplicate_panel)
