"""Pages that read across the apps: exception mining (what costs the team most) and orders at risk."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.auth import role_required
from orders import order_forms

from . import mining, risk

SPARK_WIDTH, SPARK_HEIGHT = 120, 28


def sparkline_points(values: list[int], *, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """An SVG polyline's points for `values`, left to right, the largest touching the top (1px margin)."""
    if not values:
        return ""
    top = max(values) or 1
    step = (width - 2) / max(len(values) - 1, 1)
    return " ".join(f"{1 + i * step:.1f},{height - 1 - (height - 2) * value / top:.1f}" for i, value in enumerate(values))


@role_required()
@require_GET
def exception_mining(request):
    period = mining.period_from(request.GET)
    pareto = mining.exception_pareto(period)
    rows = [{"cause": cause, "points": sparkline_points([count for _, count, _ in cause.weekly])} for cause in pareto.causes]
    return render(
        request,
        "fulfillment/mining.html",
        {"pareto": pareto, "period": period, "rows": rows, "spark": {"width": SPARK_WIDTH, "height": SPARK_HEIGHT}},
    )


@role_required()
@require_GET
def orders_at_risk(request):
    hold = order_forms.ORDER_ACTIONS["hold"]
    may_hold = order_forms.may_take(request.user, hold, request.user.get_all_permissions())
    rows = [{"risk": item, "holdable": may_hold and hold.applies(item.order)} for item in risk.orders_at_risk()]
    return render(
        request,
        "fulfillment/at_risk.html",
        {
            "rows": rows,
            "may_hold": may_hold,
            "window_days": risk.WINDOW_DAYS,
            "min_support": risk.MIN_SUPPORT,
            "top": risk.TOP,
        },
    )
