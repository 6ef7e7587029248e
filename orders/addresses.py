"""Shipping-address checks from per-country rules (libaddressinput data, see address_data/NOTICE.md).

A problem found here never rejects an order: it holds it with an
`invalid_address` exception so a person can confirm or correct the address.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

RULES_FILE = Path(__file__).resolve().parent / "address_data" / "postal_codes_by_country.json"

# libaddressinput's field letters -> our address fields and how to name them to a person.
REQUIRED_FIELD_CODES = {
    "A": ("line1", "street address"),
    "C": ("city", "city"),
    "S": ("region", "state or region"),
    "Z": ("postal_code", "postal code"),
}


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


def address_problems(*, line1: str, city: str, region: str, postal_code: str, country: str) -> list[AddressProblem]:
    """What is missing or malformed in an address for its country; empty when it looks deliverable."""
    values = {"line1": line1, "city": city, "region": region, "postal_code": postal_code}
    country = (country or "").strip().upper()
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
