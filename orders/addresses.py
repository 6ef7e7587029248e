"""Shipping addresses: their one list of fields, and the per-country rules they are checked against
(libaddressinput data, see address_data/NOTICE.md).

A problem found here never rejects an order: it holds it with an `invalid_address` exception so a
person can confirm or correct the address.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from core.addresses import normalized_postal_code

RULES_FILE = Path(__file__).resolve().parent / "address_data" / "postal_codes_by_country.json"

# libaddressinput's field letters -> our address fields and how to name them to a person.
REQUIRED_FIELD_CODES = {
    "A": ("line1", "street address"),
    "C": ("city", "city"),
    "S": ("region", "state or region"),
    "Z": ("postal_code", "postal code"),
}


@dataclass(frozen=True)
class Address:
    """A shipping address as an order stores it (`ship_<field>`) and the API and pages show it."""

    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "country", (self.country or "").strip().upper())

    @classmethod
    def from_mapping(cls, data: Mapping) -> Address:
        """From a dict with some or all of the fields (an API body, a form's cleaned data)."""
        return cls(**{name: data.get(name) or "" for name in ADDRESS_FIELDS})

    @classmethod
    def of(cls, order) -> Address:
        """The order's shipping address."""
        return cls(**{name: getattr(order, f"ship_{name}") for name in ADDRESS_FIELDS})

    def replaced(self, changes: Mapping) -> Address:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def order_fields(self) -> dict[str, str]:
        """The order's fields (`ship_<field>`) holding this address."""
        return {f"ship_{name}": value for name, value in self.as_dict().items()}

    @property
    def destination(self) -> tuple[str, str]:
        """What routing reads: rules match the country and the postal prefix, sites ship to countries."""
        return self.country, normalized_postal_code(self.postal_code)

    def problems(self) -> list[AddressProblem]:
        return address_problems(self)


ADDRESS_FIELDS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(Address))


@dataclass(frozen=True)
class AddressProblem:
    field: str
    message: str


@cache
def _rules() -> dict[str, dict]:
    data = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    return {code: rule for code, rule in data.items() if not code.startswith("_") and isinstance(rule, dict)}


def country_rule(country: str) -> dict | None:
    return _rules().get((country or "").upper())


def address_problems(address: Address) -> list[AddressProblem]:
    """What is missing or malformed in an address for its country; empty when it looks deliverable."""
    values = address.as_dict()
    country = address.country
    if not country:
        return [AddressProblem("country", "The country is missing.")]
    rule = country_rule(country)
    if rule is None:
        return [AddressProblem("country", f"{country} is not a country code we know.")]
    problems = []
    required = rule.get("required_fields", "AC")
    for code, (field, label) in REQUIRED_FIELD_CODES.items():
        if code in required and not (values[field] or "").strip():
            problems.append(
                AddressProblem(field, f"The {label} is missing; {rule.get('name', country).title()} addresses need one.")
            )
    pattern = rule.get("postal_code_regex")
    postal_code = address.postal_code
    code = (postal_code or "").strip().upper()
    if pattern and code and not re.fullmatch(pattern, code):
        examples = ", ".join(rule.get("postal_code_examples", [])[:2])
        hint = f" (for example {examples})" if examples else ""
        problems.append(
            AddressProblem(
                "postal_code", f"{postal_code!r} does not look like a postal code of {rule.get('name', country).title()}{hint}."
            )
        )
    return problems
