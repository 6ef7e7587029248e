"""retry_sync, registered into the exceptions registry at start-up."""

from __future__ import annotations

from django import forms

from exceptions import actions
from exceptions.forms import ActionForm

from .services import retries


class RetrySyncForm(ActionForm):
    note = forms.CharField(label="Note (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2}))


def register_actions() -> None:
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
