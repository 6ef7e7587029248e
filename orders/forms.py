from __future__ import annotations

from django import forms

from exceptions.errors import NOTE_REQUIRED, REASON_REQUIRED
from exceptions.forms import ActionForm
from inventory.models import Location, Sku

from .addresses import ADDRESS_FIELDS
from .models import Order, OrderLine
from .services.duplicates import twin_id


class ReleaseHoldForm(ActionForm):
    note = forms.CharField(
        label="Why the order may go on", widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": NOTE_REQUIRED}
    )


class CancelOrderForm(ActionForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": REASON_REQUIRED})


class CancelLineForm(ActionForm):
    line = forms.ModelChoiceField(queryset=OrderLine.objects.none(), empty_label="Choose a line")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": REASON_REQUIRED})

    def __init__(self, *args, exception=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        if exception is not None and exception.order_id:
            self.fields["line"].queryset = OrderLine.objects.filter(order_id=exception.order_id, cancelled=False)
            self.fields["line"].label_from_instance = lambda line: (
                f"#{line.line_number} {line.sku_code} × {line.quantity} {line.uom}"
            )
            if exception.line_id:
                self.fields["line"].initial = exception.line_id


class CorrectAddressForm(ActionForm):
    name = forms.CharField(max_length=200, required=False)
    line1 = forms.CharField(label="Street address", max_length=200, required=False)
    line2 = forms.CharField(label="Address line 2", max_length=200, required=False)
    city = forms.CharField(max_length=100, required=False)
    region = forms.CharField(label="State or region", max_length=100, required=False)
    postal_code = forms.CharField(max_length=20, required=False)
    country = forms.CharField(max_length=2, min_length=2, help_text="Two-letter ISO code.")

    field_order = list(ADDRESS_FIELDS)

    def __init__(self, *args, exception=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        order = exception.order if exception is not None and exception.order_id else None
        if order is not None and not self.is_bound:
            for name in ADDRESS_FIELDS:
                self.fields[name].initial = getattr(order, f"ship_{name}")


class AcceptPriceForm(ActionForm):
    reason = forms.CharField(
        label="Why this price stands", widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": REASON_REQUIRED}
    )


class ApproveSplitForm(ActionForm):
    pass


class RejectSplitForm(ActionForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What the customer told you"}),
        error_messages={"required": REASON_REQUIRED},
    )


class CancelLineShipRestForm(CancelLineForm):
    pass


class ReallocateForm(ActionForm):
    location = forms.ModelChoiceField(queryset=Location.objects.none(), empty_label="Choose a location")

    def __init__(self, *args, exception=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        if exception is not None and exception.order_id:
            country = (exception.order.ship_country or "").upper()
            ids = [loc.pk for loc in Location.objects.filter(active=True) if loc.ships_to_country(country)]
            self.fields["location"].queryset = Location.objects.filter(pk__in=ids).order_by("code")


class SubstituteSkuForm(ActionForm):
    substitution = forms.ChoiceField(label="Ship instead", choices=())

    def __init__(self, *args, exception=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        choices = [("", "Choose a line and its substitute")]
        if exception is not None and exception.order_id:
            lines = (
                OrderLine.objects.filter(order_id=exception.order_id, cancelled=False, sku__isnull=False)
                .select_related("sku")
                .prefetch_related("sku__substitutes")
            )
            for line in lines:
                for substitute in line.sku.substitutes.all():
                    choices.append(
                        (
                            f"{line.pk}:{substitute.pk}",
                            f"#{line.line_number} {line.sku.code} → {substitute.code} {substitute.name}",
                        )
                    )
        self.fields["substitution"].choices = choices

    def clean_substitution(self):
        line_id, sku_id = (int(part) for part in self.cleaned_data["substitution"].split(":"))
        line = OrderLine.objects.get(pk=line_id)
        return line, Sku.objects.get(pk=sku_id)


class MapSkuForm(ActionForm):
    sku = forms.ModelChoiceField(label="Our SKU", queryset=Sku.objects.none(), empty_label="Choose one of our SKUs")
    remember = forms.BooleanField(
        label="Remember for this partner",
        required=False,
        initial=True,
        help_text="Their next order with this code passes intake with our SKU.",
    )

    def __init__(self, *args, exception=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        self.fields["sku"].queryset = Sku.objects.filter(active=True).order_by("code")
        self.fields["sku"].label_from_instance = lambda sku: f"{sku.code} {sku.name}"
        line = exception.line if exception is not None and exception.line_id else None
        if line is not None:
            self.fields["sku"].help_text = f"The partner sent {line.sku_code!r}."


class CancelDuplicateForm(ActionForm):
    cancel = forms.ModelChoiceField(label="Cancel", queryset=Order.objects.none(), empty_label="Choose the order to cancel")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": REASON_REQUIRED})

    def __init__(self, *args, exception=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        if exception is not None and exception.order_id:
            ids = [exception.order_id, *([twin_id(exception)] if twin_id(exception) else [])]
            self.fields["cancel"].queryset = Order.objects.filter(pk__in=ids).select_related("partner").order_by("pk")
            self.fields["cancel"].label_from_instance = lambda order: (
                f"{order.partner.code} {order.external_id}" + (" (this order)" if order.pk == exception.order_id else "")
            )


class KeepBothForm(ActionForm):
    reason = forms.CharField(
        label="Why both orders stand",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": REASON_REQUIRED},
    )
