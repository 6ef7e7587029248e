"""Input of the resolution actions: every action has a form; the forms of hands-on work also ask for operator minutes."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from core.priority import Priority

from .errors import NOTE_REQUIRED, REASON_REQUIRED
from .models import RootCause


class ActionForm(forms.Form):
    # Whether the action is hands-on work whose time feeds the cost of exceptions; a purely administrative step
    # (claim, assign, park, resume, reopen) takes no time worth asking about.
    asks_for_minutes = True

    operator_minutes = forms.IntegerField(
        label="Minutes spent",
        min_value=0,
        max_value=8 * 60,
        required=False,
        initial=0,
        help_text="Your hands-on time for this step; it feeds the cost of exceptions.",
    )

    def __init__(self, *args, exception=None, **kwargs):
        self.exception = exception
        super().__init__(*args, **kwargs)
        minutes = self.fields.pop("operator_minutes")
        if self.asks_for_minutes:
            self.fields["operator_minutes"] = minutes  # after what the action itself needs

    def clean_operator_minutes(self) -> int:
        return self.cleaned_data.get("operator_minutes") or 0


class ClaimForm(ActionForm):
    asks_for_minutes = False


class AssignForm(ActionForm):
    asks_for_minutes = False

    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Assign to", empty_label="Choose a person")

    def __init__(self, *args, exception=None, members=None, **kwargs):
        super().__init__(*args, exception=exception, **kwargs)
        if members is not None:
            # Members already fetched by the page: no query per row.
            self.fields["owner"].queryset = get_user_model().objects.filter(pk__in=[m.pk for m in members])
            self.fields["owner"].choices = [("", "Choose a person"), *((m.pk, m.get_username()) for m in members)]
        elif exception is not None:
            self.fields["owner"].queryset = exception.queue.members.filter(is_active=True).order_by("username")


class NoteForm(ActionForm):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": NOTE_REQUIRED})


class CommentForm(NoteForm):
    pass


class WaitForm(ActionForm):
    asks_for_minutes = False

    note = forms.CharField(
        label="Waiting for",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say what the exception is waiting for."},
    )


class ResumeForm(ActionForm):
    asks_for_minutes = False

    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ResolveForm(NoteForm):
    root_cause = forms.ModelChoiceField(
        queryset=RootCause.objects.filter(active=True),
        to_field_name="name",
        required=False,
        empty_label="Not sure",
        help_text="Optional: what caused it, for the reports.",
    )

    def clean_root_cause(self) -> str:
        cause = self.cleaned_data.get("root_cause")
        return cause.name if cause else ""


class PriorityForm(ActionForm):
    asks_for_minutes = False

    priority = forms.ChoiceField(choices=[("", "Choose a priority"), *Priority.choices])
    note = forms.CharField(label="Why (optional)", widget=forms.Textarea(attrs={"rows": 2}), required=False)


class DismissForm(ActionForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), error_messages={"required": REASON_REQUIRED})


class ReopenForm(NoteForm):
    asks_for_minutes = False
