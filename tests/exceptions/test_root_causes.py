"""The root cause a person records when resolving: chosen from a short list the ops admins keep."""

import pytest
from django.urls import reverse

from exceptions import actions
from exceptions.models import ExceptionStatus, FulfillmentException, Queue, RootCause
from tests.factories import UserFactory, raise_on_order

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_list_starts_with_the_six_causes_in_order():
    assert list(RootCause.objects.values_list("name", flat=True)) == [
        "Data",
        "Integration",
        "Process",
        "Carrier",
        "Customer",
        "Stock",
    ]


def test_resolving_from_the_queue_records_the_chosen_cause(client, coordinator):
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)
    exception = raise_on_order("out_of_stock")
    client.force_login(coordinator)
    assert '<option value="Carrier">Carrier</option>' in client.get("/queues/?tab=team").content.decode()

    client.post(
        reverse("exception-action", args=[exception.pk, "resolve"]),
        {"tab": "team", "note": "Reshipped", "root_cause": "Carrier"},
        **HTMX,
    )

    resolved = FulfillmentException.objects.get(pk=exception.pk)
    assert (resolved.status, resolved.root_cause) == (ExceptionStatus.RESOLVED, "Carrier")


def test_the_cause_is_optional_and_an_unknown_one_is_refused(coordinator):
    first, second = raise_on_order("out_of_stock"), raise_on_order("out_of_stock")

    actions.action_perform(code="resolve", exception_id=first.pk, user=coordinator, data={"note": "Fine"})
    assert FulfillmentException.objects.get(pk=first.pk).root_cause == ""
    with pytest.raises(actions.InvalidInput) as refused:
        actions.action_perform(
            code="resolve", exception_id=second.pk, user=coordinator, data={"note": "x", "root_cause": "Gremlins"}
        )
    assert "Select a valid choice" in refused.value.message
    assert FulfillmentException.objects.get(pk=second.pk).status == ExceptionStatus.OPEN


def test_an_admin_edits_the_list_and_a_retired_cause_is_no_longer_offered(client, coordinator):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    client.post(
        reverse("admin:exceptions_rootcause_add"), {"name": "Packaging", "description": "", "position": 5, "active": "on"}
    )
    stock = RootCause.objects.get(name="Stock")
    RootCause.objects.filter(pk=stock.pk).update(active=False)

    form = actions.action_form("resolve", raise_on_order("out_of_stock"))
    offered = [label for _, label in form.fields["root_cause"].choices]
    assert offered[:2] == ["Not sure", "Packaging"]
    assert "Stock" not in offered
