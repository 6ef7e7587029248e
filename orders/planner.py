"""The split planner: which locations ship which lines, using as few shipments as possible.

Pure Python over plain numbers (no database), so it can be checked exhaustively
and with property-based tests. The allocation service feeds it the candidates
in rank order and the stock it read, and turns its answer into reservations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

# Beyond this many location combinations the planner covers greedily instead of exhaustively.
COMBINATION_LIMIT = 20_000


@dataclass(frozen=True)
class PlanLine:
    line_id: int
    sku_id: int
    quantity: int  # base units still to allocate


@dataclass(frozen=True)
class Plan:
    # (location_id, ((line_id, quantity), ...)) in candidate rank order
    shipments: tuple[tuple[int, tuple[tuple[int, int], ...]], ...] = ()
    short: Mapping[int, int] = field(default_factory=dict)  # line_id -> units no candidate has
    needs_more_shipments: bool = False  # all candidates together could fill it, but not within the limits

    @property
    def filled(self) -> bool:
        return bool(self.shipments)


def _demand(lines: Sequence[PlanLine]) -> dict[int, int]:
    demand: dict[int, int] = defaultdict(int)
    for line in lines:
        demand[line.sku_id] += line.quantity
    return demand


def _covers(locations: Sequence[int], demand: Mapping[int, int], available: Mapping[tuple[int, int], int]) -> bool:
    return all(sum(max(0, available.get((loc, sku), 0)) for loc in locations) >= need for sku, need in demand.items())


def _assign(lines: Sequence[PlanLine], locations: Sequence[int], available: Mapping[tuple[int, int], int]):
    """Fill each line from the locations in rank order; lines may be split between locations."""
    left = {(loc, line.sku_id): max(0, available.get((loc, line.sku_id), 0)) for line in lines for loc in locations}
    by_location: dict[int, list[tuple[int, int]]] = {loc: [] for loc in locations}
    for line in lines:
        wanted = line.quantity
        for loc in locations:
            take = min(wanted, left[(loc, line.sku_id)])
            if take:
                by_location[loc].append((line.line_id, take))
                left[(loc, line.sku_id)] -= take
                wanted -= take
            if not wanted:
                break
    return tuple((loc, tuple(assigned)) for loc, assigned in by_location.items() if assigned)


def _greedy_cover(demand: dict[int, int], candidates: Sequence[int], available, max_shipments: int) -> list[int] | None:
    """Pick, again and again, the location that supplies most of what is still missing."""
    missing, chosen = dict(demand), []
    while any(missing.values()) and len(chosen) < max_shipments:
        best = max(
            (loc for loc in candidates if loc not in chosen),
            key=lambda loc: sum(min(need, max(0, available.get((loc, sku), 0))) for sku, need in missing.items()),
            default=None,
        )
        if best is None:
            break
        gain = {sku: min(need, max(0, available.get((best, sku), 0))) for sku, need in missing.items()}
        if not any(gain.values()):
            break
        chosen.append(best)
        missing = {sku: need - gain[sku] for sku, need in missing.items()}
    if any(missing.values()):
        return None
    return [loc for loc in candidates if loc in chosen]  # back in rank order


def _short(lines: Sequence[PlanLine], candidates: Sequence[int], available) -> dict[int, int]:
    """Per line, the units that all candidates together cannot supply (lines in order share a SKU's stock)."""
    total: dict[int, int] = defaultdict(int)
    for (loc, sku), units in available.items():
        if loc in candidates:
            total[sku] += max(0, units)
    short = {}
    for line in lines:
        supplied = min(line.quantity, total[line.sku_id])
        total[line.sku_id] -= supplied
        if line.quantity - supplied:
            short[line.line_id] = line.quantity - supplied
    return short


def plan_shipments(
    lines: Sequence[PlanLine],
    candidates: Sequence[int],
    available: Mapping[tuple[int, int], int],
    *,
    allow_split: bool,
    max_shipments: int,
    combination_limit: int = COMBINATION_LIMIT,
) -> Plan:
    """The plan with the fewest shipments (one location if any fills it all), trying candidates in rank
    order; or, when none fits, what is short. Never plans more than `available` holds."""
    lines = [line for line in lines if line.quantity > 0]
    if not lines:
        return Plan()
    demand = _demand(lines)
    for loc in candidates:
        if _covers([loc], demand, available):
            return Plan(shipments=_assign(lines, [loc], available))
    if allow_split and max_shipments >= 2:
        useful = [loc for loc in candidates if any(available.get((loc, sku), 0) > 0 for sku in demand)]
        examined = 0
        for size in range(2, min(max_shipments, len(useful)) + 1):
            for group in combinations(useful, size):
                examined += 1
                if examined > combination_limit:
                    break
                if _covers(group, demand, available):
                    return Plan(shipments=_assign(lines, group, available))
            if examined > combination_limit:
                group = _greedy_cover(demand, useful, available, max_shipments)
                if group:
                    return Plan(shipments=_assign(lines, group, available))
                break
    short = _short(lines, candidates, available)
    return Plan(short=short, needs_more_shipments=not short)
