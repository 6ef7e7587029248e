from __future__ import annotations

from django import forms

from exceptions.forms import ActionForm
from orders.models import ServiceLevel, Shipment

from .services.labels import carrier_choices

NO_CARRIER = "No carrier to choose: name the routing rule's carriers in the admin, or set the shipment's."


class ChangeCarrierForm(ActionForm):
    carrier = forms.ChoiceField(
        choices=(), error_messages={"invalid_choice": "%(value)s is not a carrier of this order's routing rule."}
    )
    service = forms.ChoiceField(choices=ServiceLevel.choices)
    note = forms.CharField(label="Note for the warehouse (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, exception=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        shipment = None
        if exception is not None and exception.shipment_id:
            shipment = Shipment.objects.select_related("order").filter(pk=exception.shipment_id).first()
        carriers = carrier_choices(shipment) if shipment else []
        self.fields["carrier"].choices = [(carrier, carrier) for carrier in carriers]
        if not carriers:
            self.fields["carrier"].error_messages.update(required=NO_CARRIER, invalid_choice=NO_CARRIER)
        if shipment is not None and not self.is_bound:
            self.fields["carrier"].initial = shipment.carrier or (carriers[0] if carriers else None)
            self.fields["service"].initial = shipment.service or shipment.order.service_level
        if shipment is not None and shipment.carrier:
            self.fields["carrier"].help_text = f"Now {shipment.carrier} {shipment.service}".strip() + "."
