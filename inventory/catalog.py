"""CSV catalogue import: locations, SKUs and stock, as DESIGN §7 lists the columns.

Every row of every file is checked before anything is written, and the import
runs in one transaction, so a bad row (named by file and line) imports nothing.
Rows that already match the database are left alone: importing the same files
twice changes nothing and writes no ledger rows.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction

from core.actors import Actor
from core.errors import InvalidInput

from .errors import InventoryError
from .models import Location, Sku, StockLevel
from .services import stock_level_ensure, stock_set_on_hand

LOCATION_COLUMNS = ("code", "name", "kind", "country", "region", "postal_prefixes", "ships_to")
SKU_COLUMNS = ("code", "name", "uom", "case_pack", "unit_price", "substitutes")
STOCK_COLUMNS = ("location", "sku", "on_hand", "safety_stock", "reorder_point", "lead_time_days")

Progress = Callable[[Iterable, str, int], Iterable]


def no_progress(rows: Iterable, label: str, total: int) -> Iterable:
    return rows


class CatalogFileError(InvalidInput):
    def __init__(self, errors: list[str]) -> None:
        shown = errors[:20]
        more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        super().__init__(InventoryError.INVALID_CATALOG_FILE, "\n".join(shown) + more)
        self.errors = errors


@dataclass
class FileSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class ImportSummary:
    files: dict[str, FileSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


def _read(path: Path, columns: tuple[str, ...]) -> list[_Row]:
    name = path.name
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogFileError([f"{name}: cannot open: {exc.strerror}"]) from None
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CatalogFileError([f"{name}:1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"])
        reader.fieldnames = header
        rows = []
        try:
            for values in reader:
                rows.append(_Row(reader.line_num, {k: (v or "").strip() for k, v in values.items() if k is not None}))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CatalogFileError([f"{name}:{reader.line_num}: unreadable row: {exc}"]) from None
    return rows


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(";") if item.strip()]


def _whole_number(value: str, column: str, errors: list[str], where: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        errors.append(f"{where}: {column} must be a whole number, got {value!r}")
        return 0
    if number < minimum:
        errors.append(f"{where}: {column} must be {minimum} or more, got {number}")
    return number


def _duplicate_check(rows: list[_Row], key: Callable[[_Row], object], name: str, errors: list[str]) -> None:
    seen: dict[object, int] = {}
    for row in rows:
        k = key(row)
        if k in seen:
            errors.append(f"{name}:{row.line}: duplicate of line {seen[k]}")
        seen.setdefault(k, row.line)


def _save_if_changed(obj, values: dict, summary: FileSummary) -> None:
    if obj.pk is None:
        for attr, value in values.items():
            setattr(obj, attr, value)
        obj.save()
        summary.created += 1
        return
    changed = [attr for attr, value in values.items() if getattr(obj, attr) != value]
    if changed:
        for attr in changed:
            setattr(obj, attr, values[attr])
        obj.save(update_fields=changed)
        summary.updated += 1
    else:
        summary.unchanged += 1


def _import_locations(path: Path, progress: Progress) -> FileSummary:
    name, rows, errors = path.name, _read(path, LOCATION_COLUMNS), []
    kinds = set(Location.Kind.values)
    parsed = []
    for row in rows:
        v, where = row.values, f"{name}:{row.line}"
        if not v["code"]:
            errors.append(f"{where}: code is empty")
        if not v["name"]:
            errors.append(f"{where}: name is empty")
        if v["kind"] not in kinds:
            errors.append(f"{where}: kind must be one of {', '.join(sorted(kinds))}, got {v['kind']!r}")
        if len(v["country"]) != 2 or not v["country"].isalpha():
            errors.append(f"{where}: country must be a two-letter ISO code, got {v['country']!r}")
        ships_to = [c.upper() for c in _split_list(v["ships_to"])]
        bad = [c for c in ships_to if len(c) != 2 or not c.isalpha()]
        if bad:
            errors.append(f"{where}: ships_to has codes that are not two-letter ISO codes: {', '.join(bad)}")
        parsed.append(
            (
                row,
                {
                    "name": v["name"],
                    "kind": v["kind"],
                    "country": v["country"].upper(),
                    "region": v["region"],
                    "postal_prefixes": _split_list(v["postal_prefixes"]),
                    "ships_to": ships_to,
                },
            )
        )
    _duplicate_check(rows, lambda r: r.values["code"], name, errors)
    if errors:
        raise CatalogFileError(errors)
    existing = {loc.code: loc for loc in Location.objects.filter(code__in=[r.values["code"] for r in rows])}
    summary = FileSummary()
    for row, values in progress(parsed, f"locations ({name})", len(parsed)):
        _save_if_changed(existing.get(row.values["code"]) or Location(code=row.values["code"]), values, summary)
    return summary


def _import_skus(path: Path, progress: Progress) -> FileSummary:
    name, rows, errors = path.name, _read(path, SKU_COLUMNS), []
    codes_in_file = {r.values["code"] for r in rows}
    parsed = []
    for row in rows:
        v, where = row.values, f"{name}:{row.line}"
        if not v["code"]:
            errors.append(f"{where}: code is empty")
        if not v["name"]:
            errors.append(f"{where}: name is empty")
        uom = (v["uom"] or Sku.BASE_UOM).lower()
        case_pack = _whole_number(v["case_pack"] or "1", "case_pack", errors, where, minimum=1)
        price = None
        if v["unit_price"]:
            try:
                price = Decimal(v["unit_price"])
                if price < 0 or not price.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                errors.append(f"{where}: unit_price must be a price of zero or more, got {v['unit_price']!r}")
        parsed.append(
            (
                row,
                {
                    "name": v["name"],
                    "base_uom": uom,
                    "case_pack": case_pack,
                    "unit_price": price.quantize(Decimal("0.01")) if price is not None else None,
                },
                _split_list(v["substitutes"]),
            )
        )
    _duplicate_check(rows, lambda r: r.values["code"], name, errors)
    wanted = {code for _, _, subs in parsed for code in subs}
    known = codes_in_file | set(Sku.objects.filter(code__in=wanted).values_list("code", flat=True))
    for row, _, subs in parsed:
        unknown = [code for code in subs if code not in known]
        if unknown:
            errors.append(f"{name}:{row.line}: unknown substitute SKU {', '.join(unknown)}")
        if row.values["code"] in subs:
            errors.append(f"{name}:{row.line}: a SKU cannot substitute itself")
    if errors:
        raise CatalogFileError(errors)
    existing = {sku.code: sku for sku in Sku.objects.filter(code__in=codes_in_file)}
    summary = FileSummary()
    for row, values, _ in progress(parsed, f"SKUs ({name})", len(parsed)):
        sku = existing.get(row.values["code"]) or Sku(code=row.values["code"])
        _save_if_changed(sku, values, summary)
        existing[sku.code] = sku
    by_code = {sku.code: sku for sku in Sku.objects.filter(code__in=known)}
    for row, _, subs in parsed:
        sku = existing[row.values["code"]]
        wanted_ids = {by_code[code].pk for code in subs}
        if set(sku.substitutes.values_list("pk", flat=True)) != wanted_ids:
            sku.substitutes.set(wanted_ids)
    return summary


def _import_stock(path: Path, actor: Actor, progress: Progress) -> FileSummary:
    name, rows, errors = path.name, _read(path, STOCK_COLUMNS), []
    locations = {loc.code: loc.pk for loc in Location.objects.filter(code__in={r.values["location"] for r in rows})}
    skus = {sku.code: sku.pk for sku in Sku.objects.filter(code__in={r.values["sku"] for r in rows})}
    parsed = []
    for row in rows:
        v, where = row.values, f"{name}:{row.line}"
        if v["location"] not in locations:
            errors.append(f"{where}: unknown location {v['location']!r}")
        if v["sku"] not in skus:
            errors.append(f"{where}: unknown SKU {v['sku']!r}")
        numbers = {
            column: _whole_number(v[column] or "0", column, errors, where, minimum=0)
            for column in ("on_hand", "safety_stock", "reorder_point", "lead_time_days")
        }
        parsed.append((row, numbers))
    _duplicate_check(rows, lambda r: (r.values["location"], r.values["sku"]), name, errors)
    if errors:
        raise CatalogFileError(errors)
    # In location and SKU order, as every path that changes several stock levels in one transaction
    # locks them (see stock_reserve_many): in file order, the import and a pick could deadlock.
    parsed.sort(key=lambda item: (locations[item[0].values["location"]], skus[item[0].values["sku"]]))
    summary = FileSummary()
    for row, numbers in progress(parsed, f"stock ({name})", len(parsed)):
        location_id, sku_id = locations[row.values["location"]], skus[row.values["sku"]]
        created = not StockLevel.objects.filter(location_id=location_id, sku_id=sku_id).exists()
        level = stock_level_ensure(location_id=location_id, sku_id=sku_id)
        settings_changed = [f for f in ("safety_stock", "reorder_point", "lead_time_days") if getattr(level, f) != numbers[f]]
        if settings_changed:
            for f in settings_changed:
                setattr(level, f, numbers[f])
            level.save(update_fields=settings_changed)
        moved = stock_set_on_hand(
            location_id=location_id,
            sku_id=sku_id,
            on_hand=numbers["on_hand"],
            actor=actor,
            reason="catalogue import",
            reference=f"{name}:{row.line}",
        )
        if created:
            summary.created += 1
        elif moved or settings_changed:
            summary.updated += 1
        else:
            summary.unchanged += 1
    return summary


@transaction.atomic
def catalog_import(
    *,
    actor: Actor,
    locations: Path | None = None,
    skus: Path | None = None,
    stock: Path | None = None,
    progress: Progress = no_progress,
) -> ImportSummary:
    """Import the given files in dependency order; any bad row rolls back the whole import."""
    summary = ImportSummary()
    if locations:
        summary.files[str(locations)] = _import_locations(Path(locations), progress)
    if skus:
        summary.files[str(skus)] = _import_skus(Path(skus), progress)
    if stock:
        summary.files[str(stock)] = _import_stock(Path(stock), actor, progress)
    return summary
