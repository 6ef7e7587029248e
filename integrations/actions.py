"""retry_sync, the three fixes of an inventory_drift, and change_carrier for a failed label, registered into the
exceptions registry at start-up."""

from __future__ import annotations

from django import forms

from exceptions import actions, filters
from exceptions.forms import ActionForm
from exceptions.models import ExceptionStatus, FulfillmentException

from .forms import ChangeCarrierForm
from .services import drift, labels, retries


class RetrySyncForm(ActionForm):
    note = forms.CharField(label="Note (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class AcceptCountForm(RetrySyncForm):
    pass


class KeepOursForm(ActionForm):
    reason = forms.CharField(
        label="Why our figure stands",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why our figure is right and the count is not."},
    )


class RecountForm(RetrySyncForm):
    asks_for_minutes = False  # it parks the exception until the WMS counts


def _minutes(data: dict) -> int:
    return data.get("operator_minutes") or 0


def _drift_open(exception) -> bool:
    return exception.is_open and exception.location_id is not None and exception.sku_id is not None


RELABELLABLE = "shipment_relabellable"


def _relabellable(exception) -> bool:
    if exception.shipment_id is None:
        return False
    known = getattr(exception, RELABELLABLE, None)  # annotated on the queue's rows
    if known is not None:
        return known
    return FulfillmentException.objects.filter(pk=exception.pk).filter(labels.relabellable()).exists()


def register_actions() -> None:
    filters.annotate_rows(RELABELLABLE, labels.relabellable)
    actions.register(
        actions.Action(
            "retry_sync",
            "Retry sync",
            "integrations.retry_sync",
            RetrySyncForm,
            run=lambda e, actor, d, user: retries.exception_retry_sync(
                exception=e, actor=actor, note=d.get("note", ""), operator_minutes=d.get("operator_minutes") or 0
            ),
            applies=lambda e, user: e.is_open and retries.retryable(e),
            generic=False,
            verb="retry syncs",
            style="primary",
        )
    )
    actions.register(
        actions.Action(
            "accept_count",
            "Accept the counted quantity",
            "inventory.resolve_drift",
            AcceptCountForm,
            run=lambda e, actor, d, user: drift.exception_accept_count(
                exception=e, actor=actor, note=d.get("note", ""), operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: _drift_open(e) and "counted" in (e.detail or {}),
            generic=False,
            verb="accept counts",
            style="primary",
        )
    )
    actions.register(
        actions.Action(
            "keep_ours",
            "Keep our figure",
            "inventory.resolve_drift",
            KeepOursForm,
            run=lambda e, actor, d, user: drift.exception_keep_ours(
                exception=e, reason=d["reason"], actor=actor, operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: _drift_open(e),
            generic=False,
            verb="keep stock figures against a count",
        )
    )
    actions.register(
        actions.Action(
            "request_recount",
            "Ask the WMS to recount",
            "inventory.resolve_drift",
            RecountForm,
            run=lambda e, actor, d, user: drift.exception_request_recount(
                exception=e, actor=actor, note=d.get("note", ""), operator_minutes=_minutes(d)
            ),
            applies=lambda e, user: _drift_open(e) and e.status != ExceptionStatus.WAITING,
            generic=False,
            verb="ask for recounts",
        )
    )
    actions.register(
        actions.Action(
            "change_carrier",
            "Change carrier and retry the label",
            "orders.reallocate_order",
            ChangeCarrierForm,
            run=lambda e, actor, d, user: labels.exception_change_carrier(
                exception=e,
                carrier=d["carrier"],
                service=d["service"],
                actor=actor,
                note=d.get("note", ""),
                operator_minutes=_minutes(d),
            ),
            applies=lambda e, user: e.is_open and _relabellable(e),
            generic=False,
            verb="change carriers",
            style="primary",
        )
    )
