"""What the portal's lists share: columns a person sorts by, the links that sort them, page sizes, and URLs that
change one parameter and keep the rest (so every view stays a link that can be shared)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F
from django.http import QueryDict

PAGE_SIZES = (25, 50, 100)


@dataclass(frozen=True)
class Sort:
    label: str
    columns: tuple  # (field name or expression, ascending) in the column's natural direction: what a person asks first

    def order_by(self, flipped: bool) -> list:
        # Rows without the figure (an exception with no order has no value) go last either way.
        ordering = []
        for column, ascending in self.columns:
            expression = F(column) if isinstance(column, str) else column
            up = ascending != flipped
            ordering.append(expression.asc(nulls_last=True) if up else expression.desc(nulls_last=True))
        return ordering

    def ascending(self, flipped: bool) -> bool:
        return self.columns[0][1] != flipped


@dataclass(frozen=True)
class Sorts:
    columns: dict[str, Sort]
    default: str

    def of(self, params) -> tuple[str, bool]:
        """(sort key, flipped) from `sort`, e.g. "priority" or "-age"; anything else is the default."""
        raw = (params.get("sort") or "").strip()
        key = raw.removeprefix("-")
        if key not in self.columns:
            return self.default, False
        return key, raw.startswith("-")

    def order_by(self, params) -> list:
        key, flipped = self.of(params)
        return self.columns[key].order_by(flipped)

    def links(self, query: QueryDict) -> dict[str, dict]:
        """Each column's link: its natural direction first, the other way when it is already sorted so."""
        current, flipped = self.of(query)
        links = {}
        for key, sort in self.columns.items():
            active = key == current
            value = f"-{key}" if active and not flipped else key
            links[key] = {
                "label": sort.label,
                "url": "?" + query_with(query, sort=None if value == self.default else value, page=None),
                "active": active,
                "ascending": sort.ascending(flipped) if active else None,
            }
        return links


def page_size_of(params, default: int = PAGE_SIZES[0]) -> int:
    raw = params.get("size") or ""
    return int(raw) if raw.isdigit() and int(raw) in PAGE_SIZES else default


def query_with(query: QueryDict, **changes) -> str:
    """`query` with the given parameters set (None or "" removes one), as a query string."""
    changed = query.copy()
    for key, value in changes.items():
        changed.pop(key, None)
        if value not in (None, ""):
            changed[key] = value
    return changed.urlencode()
