"""Replenishment: from daily demand to a suggested order, for every stock level at once, and what people do with
a suggestion (approve it, mark it ordered, receive it, dismiss it).

For each location and SKU, over the last N days:

- mean daily demand d and its standard deviation sigma (sample, over all N days, days without demand counted as 0);
- safety stock SS = ⌈z × sigma × √L⌉, z from the SKU's service level (95 % → 1.645), L the lead time in days;
- reorder point ROP = ⌈d × L⌉ + SS;
- order-up-to OUT = ROP + ⌈d × R⌉, R the review period in days.

When the position (on hand - reserved + on order) is at or below ROP and there is demand, a suggestion is made
for OUT - position, rounded up to whole cases. The run is a few statements per slice of SKUs, whatever the
number of rows: demand comes in as a query (the orders app knows what an order line is), and the statistics,
the figures on the stock levels and the suggestions are computed and written by the database.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from statistics import NormalDist

from django.db import connection, transaction
from django.utils import timezone

from core.actors import Actor
from core.errors import InvalidInput
from core.fsm import IllegalTransition, run_transition

from .errors import InventoryError
from .models import OPEN_SUGGESTION_STATUSES, ReplenishmentSuggestion, Sku, StockLevel, SuggestionEvent, SuggestionStatus
from .services import stock_receive


def z_for(service_level_percent) -> float:
    """The standard normal quantile for a cycle service level: 95 → 1.645."""
    return NormalDist().inv_cdf(float(service_level_percent) / 100)


@dataclass(frozen=True)
class Figures:
    """The replenishment figures of one stock level, computed the way the database computes them (for the
    explanation on a page, and to check the SQL against by hand)."""

    demand_per_day: float
    demand_sigma: float
    safety_stock: int
    reorder_point: int
    order_up_to: int

    @classmethod
    def of(cls, daily: list[int], *, lead_time_days: int, review_period_days: int, service_level_percent) -> Figures:
        days = len(daily)
        mean = sum(daily) / days if days else 0.0
        sigma = math.sqrt(sum((q - mean) ** 2 for q in daily) / (days - 1)) if days > 1 else 0.0
        safety = math.ceil(z_for(service_level_percent) * sigma * math.sqrt(lead_time_days) - 1e-9)
        reorder = math.ceil(mean * lead_time_days - 1e-9) + safety
        return cls(mean, sigma, safety, reorder, reorder + math.ceil(mean * review_period_days - 1e-9))

    def quantity(self, position: int, case_pack: int) -> int:
        short = self.order_up_to - position
        return math.ceil(short / case_pack) * case_pack if short > 0 else 0


# --- the set-based run ---------------------------------------------------------------------------------

_OPEN = ", ".join(f"'{status}'" for status in OPEN_SUGGESTION_STATUSES)
# A hair under one, so that a figure the float arithmetic puts at 84.0000000001 is 84, not 85.
_EPSILON = 1e-9


def _figures_sql(demand_table: str, z_values: str) -> str:
    """The figures of every stock level in a slice of SKUs, as a WITH list ending in `computed`.

    Parameters: low SKU id, high SKU id (of the demand), z's, low SKU id, high SKU id (of the open suggestions),
    then days, days, days (the divisor), low SKU id, high SKU id (of the levels), days. `demand_table` is the one
    `staged_demand` made. Each level carries its open suggestion's figures (`was_*`), if it has one.
    """
    levels = connection.ops.quote_name(StockLevel._meta.db_table)
    skus = connection.ops.quote_name(Sku._meta.db_table)
    suggestions = connection.ops.quote_name(ReplenishmentSuggestion._meta.db_table)
    return f"""
    WITH demand AS (
        SELECT location_id, sku_id, total, total_sq FROM {demand_table} WHERE sku_id BETWEEN %s AND %s
    ),
    z(service_level, z) AS (VALUES {z_values}),
    open_one AS (
        SELECT location_id, sku_id, status, quantity_ordered, quantity AS was_quantity, position AS was_position,
               reorder_point AS was_reorder_point, order_up_to AS was_order_up_to, safety_stock AS was_safety_stock,
               lead_time_days AS was_lead_time_days
        FROM {suggestions} WHERE status IN ({_OPEN}) AND sku_id BETWEEN %s AND %s
    ),
    stats AS (
        SELECT level.id, level.location_id, level.sku_id, level.lead_time_days, level.review_period_days,
               sku.case_pack, sku.service_level_percent, z.z, open_one.status AS open_status, open_one.was_quantity,
               open_one.was_position, open_one.was_reorder_point, open_one.was_order_up_to, open_one.was_safety_stock,
               open_one.was_lead_time_days,
               level.on_hand - level.reserved
                   + CASE WHEN open_one.status = '{SuggestionStatus.ORDERED}' THEN open_one.quantity_ordered ELSE 0 END
                   AS position,
               CAST(COALESCE(demand.total, 0) AS DOUBLE PRECISION) / %s AS mean,
               CASE WHEN %s > 1 THEN CAST(
                   COALESCE(demand.total_sq, 0) - CAST(COALESCE(demand.total, 0) AS DOUBLE PRECISION)
                   * COALESCE(demand.total, 0) / %s AS DOUBLE PRECISION) ELSE 0 END AS squares
        FROM {levels} level
        JOIN {skus} sku ON sku.id = level.sku_id
        JOIN z ON z.service_level = CAST(sku.service_level_percent AS DOUBLE PRECISION)
        LEFT JOIN demand ON demand.location_id = level.location_id AND demand.sku_id = level.sku_id
        LEFT JOIN open_one ON open_one.location_id = level.location_id AND open_one.sku_id = level.sku_id
        WHERE level.sku_id BETWEEN %s AND %s
    ),
    spread AS (
        SELECT stats.*, CASE WHEN squares > 0 THEN SQRT(squares / (%s - 1)) ELSE 0 END AS sigma FROM stats
    ),
    safety AS (
        SELECT spread.*, CAST(CEILING(z * sigma * SQRT(lead_time_days) - {_EPSILON}) AS INTEGER) AS safety_stock
        FROM spread
    ),
    reorder AS (
        SELECT safety.*, CAST(CEILING(mean * lead_time_days - {_EPSILON}) AS INTEGER) + safety_stock AS reorder_point
        FROM safety
    ),
    computed AS (
        SELECT reorder.*, reorder_point + CAST(CEILING(mean * review_period_days - {_EPSILON}) AS INTEGER) AS order_up_to
        FROM reorder
    )
    """


def service_level_z() -> tuple[str, list]:
    """VALUES rows (service level, z) for every service level the SKUs use, and their parameters (one query)."""
    levels = sorted({Decimal(level) for level in Sku.objects.values_list("service_level_percent", flat=True).distinct()})
    levels = levels or [Decimal("95")]
    return ", ".join(["(CAST(%s AS DOUBLE PRECISION), CAST(%s AS DOUBLE PRECISION))"] * len(levels)), [
        value for level in levels for value in (float(level), z_for(level))
    ]


@dataclass(frozen=True)
class SliceResult:
    levels_updated: int
    suggestions_written: int
    suggestions_withdrawn: int = 0


DEMAND_TABLE = "replenishment_demand"


@contextmanager
def staged_demand(daily_sql: str, daily_params: list):
    """Sum the demand once for a whole run into a temporary table that every slice reads: per location and SKU,
    the units and the sum of their daily squares. `daily_sql` yields (location_id, sku_id, day, quantity).

    The table belongs to this database session and is dropped at the end, so two runs never see each other's;
    the slices' transactions must therefore use one session (not a transaction-pooling proxy).
    """
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {DEMAND_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {DEMAND_TABLE} AS "
            f"SELECT location_id, sku_id, SUM(quantity) AS total, SUM(quantity * quantity) AS total_sq "
            f"FROM ({daily_sql}) daily GROUP BY location_id, sku_id",
            daily_params,
        )
        cursor.execute(f"CREATE INDEX {DEMAND_TABLE}_key ON {DEMAND_TABLE} (sku_id, location_id)")
        cursor.execute(f"ANALYZE {DEMAND_TABLE}")  # autovacuum never analyses a temporary table
    try:
        yield DEMAND_TABLE
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {DEMAND_TABLE}")


def _update_levels_sql(levels: str) -> str:
    """Only the levels whose figures moved (or that were never planned) get a new row version."""
    figures = {
        "demand_per_day": "ROUND(CAST(computed.mean AS NUMERIC), 3)",
        "demand_sigma": "ROUND(CAST(computed.sigma AS NUMERIC), 3)",
        "safety_stock": "computed.safety_stock",
        "reorder_point": "computed.reorder_point",
    }
    moved = " OR ".join(f"{levels}.{column} IS DISTINCT FROM {value}" for column, value in figures.items())
    return f"""
        UPDATE {levels} SET {", ".join(f"{column} = {value}" for column, value in figures.items())}, planned_at = %s
        FROM computed WHERE {levels}.id = computed.id AND ({levels}.planned_at IS NULL OR {moved})"""


def _needed(of: str = "") -> str:
    """Where a suggestion is called for: demand, and a position at or below the reorder point."""
    return f"{of}mean > 0 AND {of}position <= {of}reorder_point AND {of}order_up_to > {of}position"


WITHDRAWN_BY = "job:replenish"


def _withdraw_sql(suggestions: str) -> str:
    """A proposed suggestion the new figures no longer call for is dismissed, saying why; approved and ordered
    ones are a person's decision and stay."""
    return f"""
        UPDATE {suggestions} SET status = '{SuggestionStatus.DISMISSED}', updated_at = %s,
            note = 'Withdrawn by the replenishment run: have ' || CAST(computed.position AS TEXT)
                || ', reorder at ' || CAST(computed.reorder_point AS TEXT)
        FROM computed WHERE {suggestions}.location_id = computed.location_id AND {suggestions}.sku_id = computed.sku_id
            AND {suggestions}.status = '{SuggestionStatus.PROPOSED}' AND NOT ({_needed("computed.")})"""


def _withdrawal_events_sql(events: str, source: str) -> str:
    return f"""
        INSERT INTO {events} (suggestion_id, name, from_status, to_status, actor, data, at)
        SELECT id, 'withdraw', '{SuggestionStatus.PROPOSED}', '{SuggestionStatus.DISMISSED}', '{WITHDRAWN_BY}', '{{}}', %s
        FROM {source}"""


_REFRESHED = ("quantity", "position", "reorder_point", "order_up_to", "safety_stock", "lead_time_days")


def _upsert_suggestions_sql(suggestions: str) -> str:
    """Propose where there is no open suggestion; refresh a proposed one when what it says would change. Those
    that would not change are left out before the insert, so they take no lock and write nothing; the unique
    index still settles a suggestion made meanwhile (ON CONFLICT)."""
    quantity = "CAST(CEILING(CAST(order_up_to - position AS DOUBLE PRECISION) / case_pack) AS INTEGER) * case_pack"
    values = {"quantity": quantity, **{column: column for column in _REFRESHED[1:]}}
    moved = " OR ".join(f"was_{column} IS DISTINCT FROM {value}" for column, value in values.items())
    refreshed = " OR ".join(f"{suggestions}.{column} IS DISTINCT FROM excluded.{column}" for column in _REFRESHED)
    return f"""
        INSERT INTO {suggestions} (location_id, sku_id, status, quantity, demand_per_day, demand_sigma, demand_days,
            lead_time_days, review_period_days, service_level_percent, safety_stock, reorder_point, order_up_to,
            position, note, created_at, updated_at)
        SELECT location_id, sku_id, '{SuggestionStatus.PROPOSED}', {quantity}, mean, sigma, %s, lead_time_days,
            review_period_days, service_level_percent, safety_stock, reorder_point, order_up_to, position, '', %s, %s
        FROM computed WHERE {_needed()}
            AND (open_status IS NULL OR (open_status = '{SuggestionStatus.PROPOSED}' AND ({moved})))
        ON CONFLICT (location_id, sku_id) WHERE status IN ({_OPEN}) DO UPDATE SET
            quantity = excluded.quantity, demand_per_day = excluded.demand_per_day,
            demand_sigma = excluded.demand_sigma, demand_days = excluded.demand_days,
            lead_time_days = excluded.lead_time_days, review_period_days = excluded.review_period_days,
            service_level_percent = excluded.service_level_percent, safety_stock = excluded.safety_stock,
            reorder_point = excluded.reorder_point, order_up_to = excluded.order_up_to,
            position = excluded.position, updated_at = excluded.updated_at
        WHERE {suggestions}.status = '{SuggestionStatus.PROPOSED}' AND ({refreshed})"""


def replenishment_plan_slice(
    *,
    demand_table: str,
    days: int,
    low_sku_id: int,
    high_sku_id: int,
    now: datetime | None = None,
    z: tuple[str, list] | None = None,
) -> SliceResult:
    """Compute the figures of the stock levels of SKUs low..high from the staged demand, store them on the levels,
    and make (or refresh) a proposed suggestion wherever the position is at or below the reorder point.

    `z` is `service_level_z()`, looked up once per run. One transaction and, on PostgreSQL, one statement that
    computes the figures once and writes both (two on SQLite, which has no writing WITH), whatever the number of
    rows. Levels and suggestions whose figures did not move are not written; a proposed suggestion the figures no
    longer call for is withdrawn (dismissed, with the reason and an event). A suggestion a person already
    approved or ordered is left as it is; the one open suggestion per stock level is a unique index.
    """
    if days < 1:
        raise InvalidInput(InventoryError.INVALID_QUANTITY, "Demand is measured over one day or more.", fields={"days": ["≥ 1"]})
    now = now or timezone.now()
    levels = connection.ops.quote_name(StockLevel._meta.db_table)
    suggestions = connection.ops.quote_name(ReplenishmentSuggestion._meta.db_table)
    events = connection.ops.quote_name(SuggestionEvent._meta.db_table)
    z_sql, z_params = z or service_level_z()  # a run looks the service levels up once for all its slices
    with transaction.atomic(), connection.cursor() as cursor:
        figures = _figures_sql(demand_table, z_sql)
        sku_range = [low_sku_id, high_sku_id]
        params = [*sku_range, *z_params, *sku_range, days, days, days, *sku_range, days]
        if connection.vendor == "postgresql":
            cursor.execute(
                figures
                + f", updated AS ({_update_levels_sql(levels)} RETURNING 1), "
                + f"written AS ({_upsert_suggestions_sql(suggestions)} RETURNING 1), "
                + f"withdrawn AS ({_withdraw_sql(suggestions)} RETURNING {suggestions}.id), "
                + f"noted AS ({_withdrawal_events_sql(events, 'withdrawn')} RETURNING 1) "
                + "SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM written), (SELECT count(*) FROM noted)",
                [*params, now, days, now, now, now, now],
            )
            return SliceResult(*cursor.fetchone())
        cursor.execute(figures + _update_levels_sql(levels), [*params, now])
        updated = _affected(cursor)
        cursor.execute(figures + _upsert_suggestions_sql(suggestions), [*params, days, now, now])
        written = _affected(cursor)
        unneeded = (
            f"(SELECT {suggestions}.id FROM {suggestions} JOIN computed ON {suggestions}.location_id = computed.location_id"
            f" AND {suggestions}.sku_id = computed.sku_id WHERE {suggestions}.status = '{SuggestionStatus.PROPOSED}'"
            f" AND NOT ({_needed('computed.')})) unneeded"
        )
        cursor.execute(figures + _withdrawal_events_sql(events, unneeded), [*params, now])
        cursor.execute(figures + _withdraw_sql(suggestions), [*params, now])
        return SliceResult(updated, written, _affected(cursor))


def _affected(cursor) -> int:
    """Rows the last statement changed; SQLite's driver reports -1 for a statement that begins WITH."""
    if cursor.rowcount >= 0:
        return cursor.rowcount
    cursor.execute("SELECT changes()")
    return cursor.fetchone()[0]


def sku_id_slices(count: int) -> list[tuple[int, int]]:
    """The SKU id range cut into `count` slices of about equal width (fewer only when there are fewer ids)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {connection.ops.quote_name(Sku._meta.db_table)}")
        low, high = cursor.fetchone()
    if low is None:
        return []
    span = high - low + 1
    bounds = sorted({low + span * number // count for number in range(count)} | {high + 1})
    return [(start, end - 1) for start, end in pairwise(bounds)]


# --- what people do with a suggestion ----------------------------------------------------------------


def _lock(suggestion: ReplenishmentSuggestion | int) -> ReplenishmentSuggestion:
    pk = suggestion.pk if isinstance(suggestion, ReplenishmentSuggestion) else suggestion
    return ReplenishmentSuggestion.objects.select_for_update(of=("self",)).select_related("sku", "location").get(pk=pk)


def _move(suggestion: ReplenishmentSuggestion, name: str, *, actor: Actor, fields=(), data=None, **kwargs):
    from_status = run_transition(suggestion, name, fields=fields, **kwargs)
    SuggestionEvent.objects.create(
        suggestion=suggestion, name=name, from_status=from_status, to_status=suggestion.status, actor=str(actor), data=data or {}
    )
    return suggestion


def _whole_units(value, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(
            InventoryError.INVALID_QUANTITY, "The quantity must be a whole number above zero.", fields={field: ["≥ 1"]}
        )
    return value


@transaction.atomic
def suggestion_approve(*, suggestion: ReplenishmentSuggestion | int, actor: Actor) -> ReplenishmentSuggestion:
    return _move(_lock(suggestion), "approve", actor=actor)


@transaction.atomic
def suggestion_mark_ordered(
    *, suggestion: ReplenishmentSuggestion | int, quantity: int, actor: Actor, reference: str = ""
) -> ReplenishmentSuggestion:
    """The buyer ordered `quantity` from the supplier: it counts as on order until it is received."""
    quantity = _whole_units(quantity, "quantity")
    suggestion = _lock(suggestion)
    return _move(
        suggestion,
        "mark_ordered",
        actor=actor,
        fields=["quantity_ordered"],
        data={"quantity": quantity, "reference": reference},
        quantity=quantity,
    )


@transaction.atomic
def suggestion_receive(
    *, suggestion: ReplenishmentSuggestion | int, quantity: int | None = None, actor: Actor, reference: str = ""
) -> ReplenishmentSuggestion:
    """The goods arrived: the ledger gets a receipt (which re-runs allocation for the SKU's backorders)."""
    suggestion = _lock(suggestion)
    if suggestion.status != SuggestionStatus.ORDERED:
        raise IllegalTransition(suggestion, "receive", "only what was ordered can be received.")
    quantity = _whole_units(suggestion.quantity_ordered if quantity is None else quantity, "quantity")
    _move(
        suggestion,
        "receive",
        actor=actor,
        fields=["quantity_received"],
        data={"quantity": quantity, "reference": reference},
        quantity=quantity,
    )
    stock_receive(
        location_id=suggestion.location_id,
        sku_id=suggestion.sku_id,
        quantity=quantity,
        actor=actor,
        reference=reference or f"replenishment:{suggestion.pk}",
        reason="replenishment received",
    )
    return suggestion


@transaction.atomic
def suggestion_dismiss(*, suggestion: ReplenishmentSuggestion | int, reason: str, actor: Actor) -> ReplenishmentSuggestion:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(InventoryError.INVALID_QUANTITY, "Say why it is dismissed.", fields={"reason": ["Required."]})
    suggestion = _lock(suggestion)
    return _move(suggestion, "dismiss", actor=actor, fields=["note"], data={"reason": reason}, reason=reason[:300])
