"""`manage.py replenish`: the nightly run by hand, with its progress on stderr and a summary on stdout."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from inventory.models import ReplenishmentSuggestion, StockLevel
from orders.models import Shipment, ShipmentLine
from tests.factories import LocationFactory, SkuFactory, make_order, stock

pytestmark = pytest.mark.django_db


def test_the_command_plans_every_level_and_says_what_it_did():
    location, sku = LocationFactory(), SkuFactory(case_pack=6)
    stock(location, sku, 2)
    StockLevel.objects.update(lead_time_days=3)
    line = make_order(lines=[(sku, 1)]).lines.get()
    shipment = Shipment.objects.create(order=line.order, location=location)
    ShipmentLine.objects.create(shipment=shipment, order_line=line, quantity=28)
    Shipment.objects.filter(pk=shipment.pk).update(created_at=timezone.now() - timedelta(days=2))
    out, err = StringIO(), StringIO()

    call_command("replenish", days=28, stdout=out, stderr=err)

    assert (
        out.getvalue().strip()
        == "1 stock levels planned from 28 days of demand; 1 suggestions proposed or refreshed, 0 withdrawn."
    )
    assert "SKU slices planned" in err.getvalue()
    # 28 units over 28 days: 1 a day; 3 days' lead time
    assert StockLevel.objects.get().demand_per_day == 1
    assert ReplenishmentSuggestion.objects.get().quantity % 6 == 0


def test_the_command_refuses_a_window_of_no_days():
    with pytest.raises(CommandError, match="--days must be 1 or more"):
        call_command("replenish", days=0, stdout=StringIO(), stderr=StringIO())
    assert not ReplenishmentSuggestion.objects.exists()
