"""What the action forms and the queue's filters show people: minutes only for hands-on work, names not codes."""

import pytest

from exceptions import actions
from exceptions.filters import ExceptionFilter
from exceptions.models import ExceptionType, FulfillmentException
from tests.factories import make_order, raise_on_order

pytestmark = pytest.mark.django_db

# Steps that only move an exception between people or statuses; every other action fixes something.
ADMINISTRATIVE = {"claim", "assign", "wait", "resume", "reopen", "request_recount", "set_priority"}
HANDS_ON = {
    "comment",
    "resolve",
    "dismiss",
    "release_hold",
    "cancel_line",
    "cancel_order",
    "correct_address",
    "accept_price",
    "approve_split",
    "reject_split",
    "cancel_line_ship_rest",
    "reallocate",
    "substitute_sku",
    "retry_sync",
    "accept_count",
    "keep_ours",
    "map_sku",
    "change_carrier",
    "cancel_duplicate",
    "keep_both",
}


@pytest.fixture
def exception() -> FulfillmentException:
    return raise_on_order("invalid_address", make_order())


def test_every_registered_action_is_either_administrative_or_hands_on():
    assert {action.code for action in actions.all_actions()} == ADMINISTRATIVE | HANDS_ON


@pytest.mark.parametrize("code", sorted(HANDS_ON))
def test_hands_on_forms_ask_for_minutes_last(code, exception):
    form = actions.action_form(code, exception)

    assert list(form.fields)[-1] == "operator_minutes"
    assert form.fields["operator_minutes"].label == "Minutes spent"


@pytest.mark.parametrize("code", sorted(ADMINISTRATIVE))
def test_administrative_forms_ask_for_no_minutes(code, exception):
    form = actions.action_form(code, exception, {"operator_minutes": "30", "note": "x"})

    assert "operator_minutes" not in form.fields
    assert "Minutes spent" not in form.as_div()


def test_the_type_filter_lists_names_not_codes():
    choices = dict(ExceptionFilter({}, queryset=FulfillmentException.objects.all()).form.fields["type"].choices)

    late_address = ExceptionType.objects.get(code="address_change_after_release")
    assert choices[late_address.pk] == late_address.name
    assert "address_change_after_release" not in choices.values()
