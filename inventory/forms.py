"""Filters of the stock and replenishment pages, and the input of the suggestion actions.

The action forms only turn posted text into values; the services decide what is allowed and say why not.
"""

from __future__ import annotations

from django import forms

from . import selectors
from .models import Location, SuggestionStatus


def _location_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=Location.objects.order_by("code"), to_field_name="code", required=False, empty_label="Any location"
    )


def _search_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label="SKU",
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Code or name"}),
    )


class StockFilterForm(forms.Form):
    q = _search_field()
    location = _location_field()
    low = forms.BooleanField(required=False, label="At or below reorder point")
    open = forms.BooleanField(required=False, label="Has an open suggestion")


class SuggestionFilterForm(forms.Form):
    STATUS_CHOICES = [
        (selectors.OPEN, "Open (proposed, approved, ordered)"),
        *SuggestionStatus.choices,
        (selectors.ALL, "Any status"),
    ]

    q = _search_field()
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    location = _location_field()

    def __init__(self, data=None, **kwargs):
        if data is not None and not data.get("status"):
            # Absent or blank: what is still waiting for someone, the list a buyer opens the page for.
            data = data.copy()
            data["status"] = selectors.OPEN
        super().__init__(data, **kwargs)


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(error_messages={"required": "Enter a quantity.", "invalid": "Enter a whole number of units."})
    reference = forms.CharField(required=False, max_length=100)


class DismissForm(forms.Form):
    # Not required here: the service refuses a blank reason with its own message.
    reason = forms.CharField(required=False, max_length=300)
