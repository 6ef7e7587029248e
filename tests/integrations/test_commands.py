"""manage.py create_external_system, as DESIGN §7 gives it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from integrations.models import ExternalSystem
from orders.services.partners import partner_ensure
from tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("create_external_system", *args, stdout=out)
    return out.getvalue().strip()


def test_a_generic_system_gets_a_new_whsec_secret_printed_alone():
    LocationFactory(code="WH-EAST"), LocationFactory(code="WH-WEST")
    secret = run(
        "wms-east",
        "--kind",
        "wms",
        "--adapter",
        "generic_wms",
        "--base-url",
        "http://wms.local/hooks",
        "--locations",
        "WH-EAST,WH-WEST",
    )
    assert secret.startswith("whsec_") and "\n" not in secret
    system = ExternalSystem.objects.get(slug="wms-east")
    assert (system.secret, system.base_url, system.kind) == (secret, "http://wms.local/hooks", "wms")
    assert sorted(system.locations.values_list("code", flat=True)) == ["WH-EAST", "WH-WEST"]
    assert system.owns == ("physical counts", "shipment progress")


def test_run_again_it_changes_nothing_and_prints_the_current_secret():
    first = run("erp", "--kind", "erp", "--adapter", "generic_erp", "--base-url", "http://erp.local/")
    again = run("erp", "--kind", "erp", "--adapter", "generic_erp", "--base-url", "http://elsewhere.local/")
    assert again == first
    assert ExternalSystem.objects.get(slug="erp").base_url == "http://erp.local/"
    assert run("erp") == first  # the options are not needed to read it


def test_a_shopify_storefront_keeps_the_apps_secret_and_names_its_partner():
    partner_ensure(code="shop", name="Shop")
    assert (
        run("shop", "--kind", "storefront", "--adapter", "shopify", "--partner", "shop", "--secret", "shpss_abc") == "shpss_abc"
    )
    assert ExternalSystem.objects.get(slug="shop").partner.code == "shop"


def test_rotation_adds_a_secret_beside_the_old_and_retiring_drops_the_old():
    old = run("wms", "--kind", "wms", "--adapter", "generic_wms")
    new = run("wms", "--rotate-secret")
    assert new != old and new.startswith("whsec_")
    assert ExternalSystem.objects.get(slug="wms").accepted_secrets == [new, old]
    with pytest.raises(CommandError, match="rotating already"):
        run("wms", "--rotate-secret")
    assert run("wms", "--retire-old-secret") == new
    assert ExternalSystem.objects.get(slug="wms").accepted_secrets == [new]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--kind", "wms", "--adapter", "shopify"], "for a storefront, not a wms"),
        (["x", "--kind", "storefront", "--adapter", "shopify"], "names the partner"),
        (["x", "--kind", "storefront", "--adapter", "shopify", "--partner", "nobody"], "no partner 'nobody'"),
        (["x", "--kind", "wms", "--adapter", "generic_wms", "--locations", "NOWHERE"], "no location NOWHERE"),
        (["x", "--kind", "wms", "--adapter", "generic_wms", "--base-url", "not a url"], "not valid"),
        (["x"], "needs --kind and --adapter"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ExternalSystem.objects.exists()
