"""What the dashboard's order figures count, said once for the figure and for the orders list behind it."""

from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Subquery

from exceptions.models import FulfillmentException

from .models import OrderEvent, OrderStatus, RoutingDecision, Shipment

FINISHED = [OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED]
SHIPPED = [OrderStatus.SHIPPED, OrderStatus.DELIVERED]


def with_outcome_facts(orders: QuerySet) -> QuerySet:
    """`last_shipped_at`, `had_exception` and `routed` on each order, each a subquery on an indexed foreign key."""
    last_shipped = (
        Shipment.objects.filter(order=OuterRef("pk"), shipped_at__isnull=False)
        .order_by()
        .values("order")
        .annotate(last=Max("shipped_at"))
        .values("last")[:1]
    )
    return orders.annotate(
        last_shipped_at=Subquery(last_shipped),
        had_exception=Exists(FulfillmentException.objects.filter(order=OuterRef("pk"))),
        routed=Exists(RoutingDecision.objects.filter(order=OuterRef("pk"))),
    )


def released() -> Q:
    """Orders that reached ship-ready (released) at least once."""
    return Q(
        Exists(OrderEvent.objects.filter(order=OuterRef("pk"), kind=OrderEvent.Kind.TRANSITION, to_status=OrderStatus.RELEASED))
    )


# Each condition reads the facts `with_outcome_facts` adds.
OUTCOMES: dict[str, tuple[str, Q]] = {
    "routed": ("Routed (fill rate's lines)", Q(routed=True)),
    "finished": ("Finished (perfect-order rate's orders)", Q(status__in=FINISHED)),
    "perfect": (
        "Perfect",
        Q(status__in=SHIPPED, had_exception=False)
        & (Q(promised_ship_by__isnull=True) | Q(last_shipped_at__lte=F("promised_ship_by"))),
    ),
    "promised_shipped": ("Shipped with a promise (on-time rate's orders)", Q(status__in=SHIPPED, promised_ship_by__isnull=False)),
    "on_time": (
        "Shipped on time",
        Q(status__in=SHIPPED, promised_ship_by__isnull=False, last_shipped_at__lte=F("promised_ship_by")),
    ),
    "late": ("Shipped late", Q(status__in=SHIPPED, promised_ship_by__isnull=False, last_shipped_at__gt=F("promised_ship_by"))),
}


def outcome_condition(outcome: str) -> Q:
    return OUTCOMES[outcome][1]
