"""The control point's checks of an order's lines: a SKU the catalogue knows, a unit that converts to its
base unit, a price near the catalogue's. Intake raises what they find; closing an exception asks them
again, so a problem that is still there cannot be closed as fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from inventory.models import Sku

from .models import BASE_QUANTITY_LIMIT, OrderLine, Partner


@dataclass(frozen=True)
class LineProblem:
    code: str  # the exception type
    line: OrderLine
    summary: str
    detail: dict = field(default_factory=dict)


def price_gap_percent(line: OrderLine) -> Decimal | None:
    """How far the line's unit price is from the catalogue's, in percent; None when there is nothing to compare."""
    if line.sku is None or line.base_quantity is None or not line.sku.unit_price:
        return None
    catalogue = line.sku.unit_price * (line.base_quantity // line.quantity)
    return abs(line.unit_price - catalogue) / catalogue * 100


def line_problem(line: OrderLine, partner: Partner) -> LineProblem | None:
    """What the control point finds wrong with one line still wanted, if anything (the SKU loaded with it)."""
    if line.cancelled:
        return None
    if line.sku is None:
        return LineProblem("unknown_sku", line, f"Line {line.line_number}: SKU {line.sku_code!r} is not in the catalogue.")
    if line.base_quantity is None:
        return LineProblem(
            "uom_mismatch",
            line,
            f"Line {line.line_number}: {line.uom!r} does not convert to {line.sku.code}'s unit "
            f"({line.sku.base_uom}; a case holds {line.sku.case_pack}).",
        )
    gap = price_gap_percent(line)
    if gap is not None and gap > partner.price_tolerance_percent and not line.price_accepted:
        catalogue = line.sku.unit_price * (line.base_quantity // line.quantity)
        return LineProblem(
            "pricing_mismatch",
            line,
            f"Line {line.line_number}: unit price {line.unit_price} is {gap:.0f}% off the catalogue's {catalogue:.2f}.",
            {
                "sent": str(line.unit_price),
                "catalogue": str(catalogue),
                "tolerance_percent": str(partner.price_tolerance_percent),
            },
        )
    return None


def line_problems(lines: list[OrderLine], partner: Partner) -> list[LineProblem]:
    return [problem for problem in (line_problem(line, partner) for line in lines) if problem is not None]


def too_many_base_units(quantity: int, uom: str, sku: Sku | None, per_unit: int | None) -> str:
    """Why `quantity` `uom` of `sku` cannot be stored on a line (too many base units), or ""."""
    if not per_unit or quantity * per_unit <= BASE_QUANTITY_LIMIT:
        return ""
    return (
        f"{quantity:,} {uom} of {sku.code} is {quantity * per_unit:,} base units; a line holds at most {BASE_QUANTITY_LIMIT:,}."
    )
